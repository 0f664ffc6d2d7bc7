package dev.fastdms.model.format;

import dev.fastdms.model.tensor.GgmlType;
import dev.fastdms.model.tokenizer.Tokenizers;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Path;
import java.util.SplittableRandom;

/**
 * GGUF files with the shapes of real models and random weights (vLLM's "dummy weights"): speed and memory depend on
 * shapes and types, not values, so these stand in for models that cannot be downloaded here. Weights are drawn with
 * a spread like a trained model's (about 0.02), norms are 1, and the file is written streaming.
 */
public final class SyntheticModel {
    private SyntheticModel() {}

    /** Real model shapes. ropeScaling: llama3 factor, or 0 for none. */
    public record Shape(String arch, int dim, int layers, int heads, int kvHeads, int headDim, int ffn, int vocab, int ctx,
                        float ropeTheta, float ropeScaling, boolean tied) {
        public static final Shape LLAMA_3_2_1B = new Shape("llama", 2048, 16, 32, 8, 64, 8192, 128256, 131072, 500000f, 32f, true);
        public static final Shape LLAMA_3_2_3B = new Shape("llama", 3072, 28, 24, 8, 128, 8192, 128256, 131072, 500000f, 32f, true);
        public static final Shape LLAMA_3_1_8B = new Shape("llama", 4096, 32, 32, 8, 128, 14336, 128256, 131072, 500000f, 8f, false);
        public static final Shape QWEN3_8B = new Shape("qwen3", 4096, 36, 32, 8, 128, 12288, 151936, 40960, 1000000f, 0f, false);

        public static final java.util.Map<String, Shape> BY_NAME = java.util.Map.of("llama-3.2-1b", LLAMA_3_2_1B,
                "llama-3.2-3b", LLAMA_3_2_3B, "llama-3.1-8b", LLAMA_3_1_8B, "qwen3-8b", QWEN3_8B);

        /** The shape with this CLI name (llama-3.2-1b, llama-3.2-3b, llama-3.1-8b, qwen3-8b). */
        public static Shape named(String name) {
            Shape s = BY_NAME.get(name.toLowerCase());
            if (s == null) throw new IllegalArgumentException("unknown shape " + name + " (llama-3.2-1b, llama-3.2-3b, llama-3.1-8b, qwen3-8b)");
            return s;
        }
    }

    /** A weight type for synthetic models by its CLI name: q8_0, q4_0, f16, bf16, f32. */
    public static GgmlType type(String name) {
        return switch (name.toLowerCase()) {
            case "q8_0" -> GgmlType.Q8_0;
            case "q4_0" -> GgmlType.Q4_0;
            case "f16" -> GgmlType.F16;
            case "bf16" -> GgmlType.BF16;
            case "f32" -> GgmlType.F32;
            default -> throw new IllegalArgumentException("unknown type " + name + " (q8_0, q4_0, f16, bf16, f32)");
        };
    }

    public static void write(Path out, Shape s, GgmlType type, Path tokenizerJson, long seed) throws IOException {
        if (type != GgmlType.Q8_0 && type != GgmlType.Q4_0 && type != GgmlType.F16 && type != GgmlType.BF16 && type != GgmlType.F32) {
            throw new IllegalArgumentException("synthetic weights can be q8_0, q4_0, f16, bf16 or f32, not " + type);
        }
        GGUFWriter w = new GGUFWriter();
        String a = s.arch();
        w.put("general.architecture", a).put("general.name", "synthetic " + a + " " + s.dim() + "x" + s.layers() + " (random weights)")
                .put(a + ".embedding_length", s.dim()).put(a + ".block_count", s.layers())
                .put(a + ".attention.head_count", s.heads()).put(a + ".attention.head_count_kv", s.kvHeads())
                .put(a + ".attention.key_length", s.headDim()).put(a + ".attention.value_length", s.headDim())
                .put(a + ".feed_forward_length", s.ffn()).put(a + ".context_length", s.ctx())
                .put(a + ".attention.layer_norm_rms_epsilon", 1e-5f).put(a + ".rope.freq_base", s.ropeTheta());
        if (tokenizerJson != null) Tokenizers.ggufMetadata(tokenizerJson, s.vocab()).forEach(w::put);
        long[] seedBox = {seed};
        int hd = s.headDim();
        w.tensor("token_embd.weight", type, new long[]{s.vocab(), s.dim()}, random(type, (long) s.vocab() * s.dim(), seedBox[0]++));
        if (s.ropeScaling() > 0) {
            float[] f = llama3FreqFactors(hd, s.ropeTheta(), s.ropeScaling(), 1f, 4f, 8192);
            w.tensor("rope_freqs.weight", GgmlType.F32, new long[]{hd / 2}, o -> writeFloats(o, f));
        }
        for (int l = 0; l < s.layers(); l++) {
            String p = "blk." + l + ".";
            w.tensor(p + "attn_norm.weight", GgmlType.F32, new long[]{s.dim()}, ones(s.dim()));
            w.tensor(p + "attn_q.weight", type, new long[]{(long) s.heads() * hd, s.dim()}, random(type, (long) s.heads() * hd * s.dim(), seedBox[0]++));
            w.tensor(p + "attn_k.weight", type, new long[]{(long) s.kvHeads() * hd, s.dim()}, random(type, (long) s.kvHeads() * hd * s.dim(), seedBox[0]++));
            w.tensor(p + "attn_v.weight", type, new long[]{(long) s.kvHeads() * hd, s.dim()}, random(type, (long) s.kvHeads() * hd * s.dim(), seedBox[0]++));
            w.tensor(p + "attn_output.weight", type, new long[]{s.dim(), (long) s.heads() * hd}, random(type, (long) s.heads() * hd * s.dim(), seedBox[0]++));
            if (a.equals("qwen3")) {
                w.tensor(p + "attn_q_norm.weight", GgmlType.F32, new long[]{hd}, ones(hd));
                w.tensor(p + "attn_k_norm.weight", GgmlType.F32, new long[]{hd}, ones(hd));
            }
            w.tensor(p + "ffn_norm.weight", GgmlType.F32, new long[]{s.dim()}, ones(s.dim()));
            w.tensor(p + "ffn_gate.weight", type, new long[]{s.ffn(), s.dim()}, random(type, (long) s.ffn() * s.dim(), seedBox[0]++));
            w.tensor(p + "ffn_up.weight", type, new long[]{s.ffn(), s.dim()}, random(type, (long) s.ffn() * s.dim(), seedBox[0]++));
            w.tensor(p + "ffn_down.weight", type, new long[]{s.dim(), s.ffn()}, random(type, (long) s.ffn() * s.dim(), seedBox[0]++));
        }
        w.tensor("output_norm.weight", GgmlType.F32, new long[]{s.dim()}, ones(s.dim()));
        if (!s.tied()) w.tensor("output.weight", type, new long[]{s.vocab(), s.dim()}, random(type, (long) s.vocab() * s.dim(), seedBox[0]++));
        w.write(out);
    }

    /** Llama 3.1 frequency divisors as GGUF stores them in rope_freqs.weight. */
    public static float[] llama3FreqFactors(int headDim, float theta, float factor, float low, float high, int orig) {
        float[] f = new float[headDim / 2];
        for (int i = 0; i < f.length; i++) {
            double freq = Math.pow(theta, -2.0 * i / headDim);
            double wavelen = 2 * Math.PI / freq;
            if (wavelen < orig / high) f[i] = 1f;
            else if (wavelen > orig / low) f[i] = factor;
            else {
                double smooth = (orig / wavelen - low) / (high - low);
                f[i] = (float) (1.0 / ((1 - smooth) / factor + smooth));
            }
        }
        return f;
    }

    private static GGUFWriter.TensorData ones(int n) {
        float[] v = new float[n];
        java.util.Arrays.fill(v, 1f);
        return o -> writeFloats(o, v);
    }

    private static void writeFloats(OutputStream o, float[] v) throws IOException {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(v.length * 4).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (float x : v) b.putFloat(x);
        o.write(b.array());
    }

    /** Random values of spread ~0.02 in the stored form, generated block by block straight into the stream. */
    private static GGUFWriter.TensorData random(GgmlType type, long n, long seed) {
        return o -> {
            SplittableRandom r = new SplittableRandom(seed);
            byte[] buf = new byte[1 << 16];
            int fill = 0;
            long done = 0;
            int per = type.typeSize, elems = type.blockSize;
            while (done < n) {
                if (fill + per > buf.length) { o.write(buf, 0, fill); fill = 0; }
                switch (type) {
                    case Q8_0 -> { // f16 scale, 32 int8 with std ~0.02 / scale
                        short d = Float.floatToFloat16(0.0004f + 0.0001f * r.nextFloat());
                        buf[fill] = (byte) d; buf[fill + 1] = (byte) (d >> 8);
                        for (int i = 0; i < 32; i += 8) {
                            long bits = r.nextLong();
                            for (int k = 0; k < 8; k++) buf[fill + 2 + i + k] = (byte) (((bits >> (8 * k)) & 0xFF) % 101 - 50);
                        }
                    }
                    case Q4_0 -> { // f16 scale, 16 bytes of nibbles
                        short d = Float.floatToFloat16(0.005f + 0.001f * r.nextFloat());
                        buf[fill] = (byte) d; buf[fill + 1] = (byte) (d >> 8);
                        long b1 = r.nextLong(), b2 = r.nextLong();
                        for (int k = 0; k < 8; k++) { buf[fill + 2 + k] = (byte) (b1 >> (8 * k)); buf[fill + 10 + k] = (byte) (b2 >> (8 * k)); }
                    }
                    case F16 -> { short h = Float.floatToFloat16((float) (r.nextGaussian() * 0.02)); buf[fill] = (byte) h; buf[fill + 1] = (byte) (h >> 8); }
                    case BF16 -> { int bits = Float.floatToRawIntBits((float) (r.nextGaussian() * 0.02)) >>> 16; buf[fill] = (byte) bits; buf[fill + 1] = (byte) (bits >> 8); }
                    case F32 -> { int bits = Float.floatToRawIntBits((float) (r.nextGaussian() * 0.02)); for (int k = 0; k < 4; k++) buf[fill + k] = (byte) (bits >> (8 * k)); }
                    default -> throw new IllegalStateException();
                }
                fill += per;
                done += elems;
            }
            o.write(buf, 0, fill);
        };
    }
}
