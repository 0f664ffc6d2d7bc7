package dev.fastdms.tornado;

import dev.fastdms.cache.Q8Block;
import dev.fastdms.model.ModelConfig;
import dev.fastdms.model.Weights;
import dev.fastdms.model.tensor.FloatTensor;
import dev.fastdms.model.tensor.GgmlType;
import uk.ac.manchester.tornado.api.types.arrays.ByteArray;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;
import uk.ac.manchester.tornado.api.types.arrays.TornadoNativeArray;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The model's weights in the form the device reads them: each matrix kind (q, k, v, o, gate, up, down) as one array
 * holding every layer back to back, in its stored type — F32, F16/BF16 (raw 16-bit codes), Q8_0 and Q4_0 (raw ggml
 * blocks) — copied once and sent to the device once. Types the kernels do not read (Q4_K, Q6_K: the k-quants) are
 * re-quantised to Q8_0 here, which {@link #notes()} reports.
 */
final class DeviceWeights {
    enum Kind { F32, F16, BF16, Q8_0, Q4_0 }

    /** One matrix kind on the device: all layers (or one matrix when {@code layers} is 1), rows x cols each. */
    record Matrix(Kind kind, TornadoNativeArray data, int rows, int cols) {
        long bytes() { return data.getNumBytesOfSegment(); }
    }

    final Matrix embedding, output, wq, wk, wv, wo, gate, up, down;
    final FloatArray attnNorm, ffnNorm, qNorm, kNorm, outputNorm;
    final boolean tiedOutput;
    private final StringBuilder notes = new StringBuilder();

    DeviceWeights(ModelConfig c, Weights w) {
        int L = c.layers();
        embedding = pack("token_embd", new FloatTensor[]{w.tokenEmbedding}, c.vocabSize(), c.dim());
        tiedOutput = w.output == w.tokenEmbedding;
        output = tiedOutput ? embedding : pack("output", new FloatTensor[]{w.output}, c.vocabSize(), c.dim());
        wq = pack("attn_q", w.wq, c.qDim(), c.dim());
        wk = pack("attn_k", w.wk, c.kvDim(), c.dim());
        wv = pack("attn_v", w.wv, c.kvDim(), c.dim());
        wo = pack("attn_output", w.wo, c.dim(), c.qDim());
        gate = pack("ffn_gate", w.wGate, c.ffnDim(), c.dim());
        up = pack("ffn_up", w.wUp, c.ffnDim(), c.dim());
        down = pack("ffn_down", w.wDown, c.dim(), c.ffnDim());
        attnNorm = concat(w.attnNorm);
        ffnNorm = concat(w.ffnNorm);
        qNorm = c.qkNorm() ? concat(w.qNorm) : new FloatArray(1);
        kNorm = c.qkNorm() ? concat(w.kNorm) : new FloatArray(1);
        outputNorm = FloatArray.fromArray(w.outputNorm);
        if (L == 0) throw new IllegalArgumentException("a model without layers");
    }

    /** What was converted on the way (empty when every tensor kept its type). */
    String notes() { return notes.toString(); }

    long bytes() {
        long b = embedding.bytes() + (tiedOutput ? 0 : output.bytes());
        for (Matrix m : new Matrix[]{wq, wk, wv, wo, gate, up, down}) b += m.bytes();
        return b;
    }

    private static FloatArray concat(float[][] rows) {
        int n = 0;
        for (float[] r : rows) n += r.length;
        FloatArray a = new FloatArray(n);
        int o = 0;
        for (float[] r : rows) { for (float f : r) a.set(o++, f); }
        return a;
    }

    private Matrix pack(String name, FloatTensor[] layers, int rows, int cols) {
        GgmlType t = layers[0].type();
        boolean same = true;
        for (FloatTensor l : layers) same &= l.type() == t;
        Kind kind = switch (t) {
            case F32 -> Kind.F32;
            case F16 -> Kind.F16;
            case BF16 -> Kind.BF16;
            case Q8_0 -> Kind.Q8_0;
            case Q4_0 -> Kind.Q4_0;
            default -> null;
        };
        long elements = (long) rows * cols * layers.length;
        if (kind == null || !same || cols % 32 != 0 && (kind == Kind.Q8_0 || kind == Kind.Q4_0)) {
            if (cols % 32 != 0) {
                // no block type fits: keep floats
                notes.append(name).append(": ").append(t).append(" -> F32 on the device\n");
                return floats(layers, rows, cols);
            }
            notes.append(name).append(": ").append(same ? t : "mixed types").append(" -> Q8_0 on the device\n");
            return requantizeQ8(layers, rows, cols);
        }
        long bytes = switch (kind) {
            case F32 -> elements * 4;
            case F16, BF16 -> elements * 2;
            case Q8_0 -> elements / 32 * 34;
            case Q4_0 -> elements / 32 * 18;
        };
        long limit = kind == Kind.F32 ? Integer.MAX_VALUE * 4L : kind == Kind.F16 || kind == Kind.BF16 ? Integer.MAX_VALUE * 2L : Integer.MAX_VALUE;
        if (bytes > limit) throw new IllegalArgumentException(name + ": " + bytes + " bytes over all layers exceed what one TornadoVM array can index");
        TornadoNativeArray a = switch (kind) {
            case F32 -> new FloatArray((int) elements);
            case F16, BF16 -> new ShortArray((int) elements);
            default -> new ByteArray((int) bytes);
        };
        MemorySegment dst = a.getSegment();
        long per = bytes / layers.length, off = 0;
        for (FloatTensor l : layers) {
            MemorySegment.copy(l.segment(), 0, dst, off, per);
            off += per;
        }
        return new Matrix(kind, a, rows, cols);
    }

    private static Matrix floats(FloatTensor[] layers, int rows, int cols) {
        long n = (long) rows * cols;
        FloatArray a = new FloatArray(Math.toIntExact(n * layers.length));
        float[] row = new float[cols];
        for (int l = 0; l < layers.length; l++) {
            for (int r = 0; r < rows; r++) {
                layers[l].copyTo((long) r * cols, row, 0, cols);
                MemorySegment.copy(row, 0, a.getSegment(), ValueLayout.JAVA_FLOAT, (l * n + (long) r * cols) * 4, cols);
            }
        }
        return new Matrix(Kind.F32, a, rows, cols);
    }

    /** ggml's reference Q8_0 ({@link Q8Block}): per block of 32, the codes and d stored as f16. */
    static Matrix requantizeQ8(FloatTensor[] layers, int rows, int cols) {
        long blocksPerRow = cols / 32;
        ByteArray a = new ByteArray(Math.toIntExact(layers.length * rows * blocksPerRow * 34));
        MemorySegment dst = a.getSegment();
        float[] row = new float[cols];
        byte[] codes = new byte[32];
        long o = 0;
        for (FloatTensor l : layers) {
            for (int r = 0; r < rows; r++) {
                l.copyTo((long) r * cols, row, 0, cols);
                for (int b = 0; b < blocksPerRow; b++) {
                    float d = Q8Block.quantize(row, b * 32, 32, codes, 0);
                    dst.set(ValueLayout.JAVA_SHORT_UNALIGNED, o, Float.floatToFloat16(d));
                    MemorySegment.copy(codes, 0, dst, ValueLayout.JAVA_BYTE, o + 2, 32);
                    o += 34;
                }
            }
        }
        return new Matrix(Kind.Q8_0, a, rows, cols);
    }

    /** The decode tables the kernels use: every f16 and bf16 code, and the 128 E4M3 magnitudes. */
    static FloatArray lookupTables() { return lookupTables(new float[0]); }

    /** The decode tables followed by the RoPE inverse frequencies (at {@link Layout#LUT_ROPE}). */
    static FloatArray lookupTables(float[] ropeInvFreq) {
        FloatArray lut = new FloatArray(Layout.LUT_SIZE + ropeInvFreq.length);
        for (int i = 0; i < ropeInvFreq.length; i++) lut.set(Layout.LUT_ROPE + i, ropeInvFreq[i]);
        for (int i = 0; i < 65536; i++) {
            lut.set(Layout.LUT_F16 + i, Float.float16ToFloat((short) i));
            lut.set(Layout.LUT_BF16 + i, Float.intBitsToFloat(i << 16));
        }
        for (int c = 0; c < 128; c++) lut.set(Layout.LUT_FP8 + c, c == 0x7F ? Float.NaN : Float.intBitsToFloat(c << 20) * 0x1p120f);
        return lut;
    }
}
