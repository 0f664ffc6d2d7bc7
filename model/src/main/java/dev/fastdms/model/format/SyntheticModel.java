package dev.fastdms.model.format;

import dev.fastdms.model.ModelConfig;
import dev.fastdms.model.tensor.GgmlType;
import dev.fastdms.model.tokenizer.Tokenizers;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
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

        /** The config a file of this shape loads as (GGUF conventions: llama rotates adjacent pairs, qwen3 halves). */
        public ModelConfig config() {
            boolean qwen = arch.equals("qwen3");
            // llama3 scaling travels as the rope_freqs.weight tensor, not as config
            return new ModelConfig(arch, dim, layers, heads, kvHeads, headDim, ffn, vocab, ctx, qwen ? 1e-6f : 1e-5f, ropeTheta,
                    null, qwen, tied, qwen, null);
        }

        /** The shape with this CLI name (llama-3.2-1b, llama-3.2-3b, llama-3.1-8b, qwen3-8b). */
        public static Shape named(String name) {
            Shape s = BY_NAME.get(name.toLowerCase());
            if (s == null) throw new IllegalArgumentException("unknown shape " + name + " (llama-3.2-1b, llama-3.2-3b, llama-3.1-8b, qwen3-8b)");
            return s;
        }
    }

    /** A weight type for synthetic models by its CLI name: q8_0, q4_0, q4_k, q6_k, f16, bf16, f32. */
    public static GgmlType type(String name) {
        return switch (name.toLowerCase()) {
            case "q8_0" -> GgmlType.Q8_0;
            case "q4_0" -> GgmlType.Q4_0;
            case "q4_k" -> GgmlType.Q4_K;
            case "q6_k" -> GgmlType.Q6_K;
            case "f16" -> GgmlType.F16;
            case "bf16" -> GgmlType.BF16;
            case "f32" -> GgmlType.F32;
            default -> throw new IllegalArgumentException("unknown type " + name + " (q8_0, q4_0, q4_k, q4_k_m, q6_k, f16, bf16, f32)");
        };
    }

    /**
     * The type of each weight matrix: one type throughout, or llama-quantize's Q4_K_M assignment ({@code mixed}):
     * Q4_K, but Q6_K for the output matrix (the embedding when tied) and for attn_v and ffn_down in the first and
     * last eighth of the layers and every third layer between them, the file type people download most.
     */
    public record Types(GgmlType base, boolean mixed) {
        /** By CLI name: one of {@link #type}'s names, or q4_k_m. */
        public static Types named(String name) {
            return name.equalsIgnoreCase("q4_k_m") ? new Types(GgmlType.Q4_K, true) : new Types(type(name), false);
        }

        /** The type of matrix {@code tensor} in a model of this config. */
        public GgmlType of(String tensor, ModelConfig c) {
            if (!mixed) return base;
            if (tensor.equals("output.weight") || (tensor.equals("token_embd.weight") && c.tiedEmbeddings())) return GgmlType.Q6_K;
            if (tensor.endsWith(".attn_v.weight") || tensor.endsWith(".ffn_down.weight")) {
                int layer = Integer.parseInt(tensor.substring(4, tensor.indexOf('.', 4))), n = c.layers();
                if (layer < n / 8 || layer >= 7 * n / 8 || (layer - n / 8) % 3 == 2) return GgmlType.Q6_K;
            }
            return base;
        }
    }

    /**
     * Writes a GGUF of this shape with random weights, streaming (nothing of model size is held in memory). With a
     * tokenizer.json, its vocabulary, merges, special ids and chat template go into the GGUF tokenizer metadata.
     * Norms are F32 ones; everything else is {@code type}.
     */
    public static void write(Path out, Shape s, GgmlType type, Path tokenizerJson, long seed) throws IOException {
        write(out, s, new Types(type, false), tokenizerJson, seed);
    }

    /** As above, each weight matrix of the type {@code types} gives it. */
    public static void write(Path out, Shape s, Types types, Path tokenizerJson, long seed) throws IOException {
        GgmlType type = types.base();
        if (type != GgmlType.Q8_0 && type != GgmlType.Q4_0 && type != GgmlType.Q4_K && type != GgmlType.Q6_K && type != GgmlType.F16
                && type != GgmlType.BF16 && type != GgmlType.F32) {
            throw new IllegalArgumentException("synthetic weights can be q8_0, q4_0, q4_k, q6_k, f16, bf16 or f32, not " + type);
        }
        ModelConfig c = s.config();
        // llama.cpp reads hyper-parameters and token ids as uint32 and checks the stored type, so integers go as UINT32
        GGUFWriter w = new GGUFWriter();
        Map<String, Object> md = new LinkedHashMap<>();
        String a = s.arch();
        md.put("general.architecture", a);
        md.put("general.name", "synthetic " + a + " " + s.dim() + "x" + s.layers() + " (random weights)");
        md.put(a + ".embedding_length", s.dim());
        md.put(a + ".block_count", s.layers());
        md.put(a + ".attention.head_count", s.heads());
        md.put(a + ".attention.head_count_kv", s.kvHeads());
        md.put(a + ".attention.key_length", s.headDim());
        md.put(a + ".attention.value_length", s.headDim());
        md.put(a + ".feed_forward_length", s.ffn());
        md.put(a + ".context_length", s.ctx());
        md.put(a + ".attention.layer_norm_rms_epsilon", c.rmsEps());
        md.put(a + ".rope.freq_base", s.ropeTheta());
        md.put(a + ".vocab_size", s.vocab());
        if (tokenizerJson != null) md.putAll(Tokenizers.ggufMetadata(tokenizerJson, s.vocab()));
        md.forEach((k, v) -> {
            if (v instanceof Integer i) w.put(k, GGUF.ValueType.UINT32, i);
            else w.put(k, v);
        });
        if (s.ropeScaling() > 0) {
            // llama.cpp's form of llama3 scaling: per-frequency divisors as a tensor (no rope.scaling.* keys)
            float[] f = llama3FreqFactors(s.headDim(), s.ropeTheta(), s.ropeScaling(), 1f, 4f, 8192);
            w.tensor("rope_freqs.weight", GgmlType.F32, new long[]{f.length}, o -> writeFloats(o, f));
        }
        long next = seed;
        for (var e : TensorLayout.required(c).entrySet()) {
            long[] shape = e.getValue();
            if (shape.length == 1) w.tensor(e.getKey(), GgmlType.F32, shape, ones((int) shape[0]));
            else {
                GgmlType t = types.of(e.getKey(), c);
                w.tensor(e.getKey(), t, shape, random(t, shape[0] * shape[1], next++));
            }
        }
        w.write(out);
    }

    /** Bytes of tensor data a file of this shape and type holds (the metadata adds kilobytes, a tokenizer some MB). */
    public static long tensorBytes(Shape s, GgmlType type) { return tensorBytes(s, new Types(type, false)); }

    public static long tensorBytes(Shape s, Types types) {
        long total = s.ropeScaling() > 0 ? 4L * (s.headDim() / 2) : 0;
        for (var e : TensorLayout.required(s.config()).entrySet()) {
            long[] shape = e.getValue();
            total += shape.length == 1 ? 4 * shape[0] : types.of(e.getKey(), s.config()).byteSize(shape[0] * shape[1]);
        }
        return total;
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

    private static void randomBytes(SplittableRandom r, byte[] buf, int off, int n) {
        for (int i = 0; i < n; i++) buf[off + i] = (byte) r.nextInt(256);
    }

    /** Uniform on [-0.02·√3, 0.02·√3): standard deviation 0.02 like a trained layer, and far cheaper than a Gaussian. */
    private static float uniform(SplittableRandom r) { return (float) ((r.nextDouble() * 2 - 1) * 0.034641016); }

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
                    case Q4_K -> { // f16 d and dmin, 12 bytes of 6-bit scales and mins, 128 bytes of nibbles
                        short d = Float.floatToFloat16(0.00012f + 0.00004f * r.nextFloat()), dmin = Float.floatToFloat16(0.0008f + 0.0002f * r.nextFloat());
                        buf[fill] = (byte) d; buf[fill + 1] = (byte) (d >> 8); buf[fill + 2] = (byte) dmin; buf[fill + 3] = (byte) (dmin >> 8);
                        randomBytes(r, buf, fill + 4, 140);
                    }
                    case Q6_K -> { // 128 bytes of low nibbles, 64 of high bit pairs, 16 int8 scales, f16 d
                        randomBytes(r, buf, fill, 192);
                        for (int k = 0; k < 16; k++) buf[fill + 192 + k] = (byte) (1 + r.nextInt(63));
                        short d = Float.floatToFloat16(0.00003f + 0.00001f * r.nextFloat());
                        buf[fill + 208] = (byte) d; buf[fill + 209] = (byte) (d >> 8);
                    }
                    case F16 -> { short h = Float.floatToFloat16(uniform(r)); buf[fill] = (byte) h; buf[fill + 1] = (byte) (h >> 8); }
                    case BF16 -> { int bits = Float.floatToRawIntBits(uniform(r)) >>> 16; buf[fill] = (byte) bits; buf[fill + 1] = (byte) (bits >> 8); }
                    case F32 -> { int bits = Float.floatToRawIntBits(uniform(r)); for (int k = 0; k < 4; k++) buf[fill + k] = (byte) (bits >> (8 * k)); }
                    default -> throw new IllegalStateException();
                }
                fill += per;
                done += elems;
            }
            o.write(buf, 0, fill);
        };
    }
}
