package dev.fastdms.model.tensor;

import dev.fastdms.simd.Lanes;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The float kernel under {@link FloatTensor#matmul}: a tile of 4 dequantised weight rows times every batch row of x.
 * Register-blocked 4 rows x 2 batch rows: 8 accumulators, and per 8 columns 4 weight loads + 2 x loads feed 8
 * FMAs. Measured on AVX2 (16 vector registers): 4x2 ran at ~28 GMAC/s per core, 4x3/3x3/2x4 (12 or 9 accumulators)
 * at 18-25, C2 spilling some of the accumulators.
 */
final class Gemm {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;

    private Gemm() {}

    /**
     * out[b*outStride + r0 + i] (= or +=) sum over k < kn of w[i*TILE_K + k] * x[b*xStride + kc + k], for i < nr and
     * b < batch; rows nr..3 of w are zeros.
     */
    static void tile(float[] w, int kn, float[] x, int xStride, int kc, float[] out, int outStride, int r0, int nr, int batch, boolean first) {
        final int S = FloatTensor.TILE_K;
        int kv = kn & ~7;
        int b = 0;
        for (; b + 2 <= batch; b += 2) {
            int xa = b * xStride + kc, xb = xa + xStride;
            FloatVector a00 = FloatVector.zero(F), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
            for (int k = 0; k < kv; k += 8) {
                FloatVector v = FloatVector.fromArray(F, x, xa + k), u = FloatVector.fromArray(F, x, xb + k);
                FloatVector wr = FloatVector.fromArray(F, w, k);
                a00 = wr.fma(v, a00); a01 = wr.fma(u, a01);
                wr = FloatVector.fromArray(F, w, S + k);
                a10 = wr.fma(v, a10); a11 = wr.fma(u, a11);
                wr = FloatVector.fromArray(F, w, 2 * S + k);
                a20 = wr.fma(v, a20); a21 = wr.fma(u, a21);
                wr = FloatVector.fromArray(F, w, 3 * S + k);
                a30 = wr.fma(v, a30); a31 = wr.fma(u, a31);
            }
            store(out, b * outStride + r0, nr, first, tail(w, 0, x, xa, kv, kn) + Lanes.sum(a00),
                    tail(w, S, x, xa, kv, kn) + Lanes.sum(a10), tail(w, 2 * S, x, xa, kv, kn) + Lanes.sum(a20),
                    tail(w, 3 * S, x, xa, kv, kn) + Lanes.sum(a30));
            store(out, (b + 1) * outStride + r0, nr, first, tail(w, 0, x, xb, kv, kn) + Lanes.sum(a01),
                    tail(w, S, x, xb, kv, kn) + Lanes.sum(a11), tail(w, 2 * S, x, xb, kv, kn) + Lanes.sum(a21),
                    tail(w, 3 * S, x, xb, kv, kn) + Lanes.sum(a31));
        }
        for (; b < batch; b++) { // an odd last batch row
            int xa = b * xStride + kc;
            FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
            for (int k = 0; k < kv; k += 8) {
                FloatVector v = FloatVector.fromArray(F, x, xa + k);
                a0 = FloatVector.fromArray(F, w, k).fma(v, a0);
                a1 = FloatVector.fromArray(F, w, S + k).fma(v, a1);
                a2 = FloatVector.fromArray(F, w, 2 * S + k).fma(v, a2);
                a3 = FloatVector.fromArray(F, w, 3 * S + k).fma(v, a3);
            }
            store(out, b * outStride + r0, nr, first, tail(w, 0, x, xa, kv, kn) + Lanes.sum(a0),
                    tail(w, S, x, xa, kv, kn) + Lanes.sum(a1), tail(w, 2 * S, x, xa, kv, kn) + Lanes.sum(a2),
                    tail(w, 3 * S, x, xa, kv, kn) + Lanes.sum(a3));
        }
    }

    /** Columns kv..kn-1 left over when kn is not a multiple of 8 (only F32/F16/BF16 rows of odd length). */
    private static float tail(float[] w, int wo, float[] x, int xo, int kv, int kn) {
        float s = 0f;
        for (int k = kv; k < kn; k++) s += w[wo + k] * x[xo + k];
        return s;
    }

    private static void store(float[] out, int o, int nr, boolean first, float s0, float s1, float s2, float s3) {
        if (first) {
            out[o] = s0;
            if (nr > 1) out[o + 1] = s1;
            if (nr > 2) out[o + 2] = s2;
            if (nr > 3) out[o + 3] = s3;
        } else {
            out[o] += s0;
            if (nr > 1) out[o + 1] += s1;
            if (nr > 2) out[o + 2] += s2;
            if (nr > 3) out[o + 3] += s3;
        }
    }
}
