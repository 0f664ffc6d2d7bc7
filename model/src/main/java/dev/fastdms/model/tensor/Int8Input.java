package dev.fastdms.model.tensor;

import dev.fastdms.simd.Lanes;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * x quantised to int8 once per product for the integer kernels ({@link Int16Tensor}), as llama.cpp's Q8_0
 * activations: each block of 32 values gets the scale d = max|x| / 127 and the values rint(x · 127 / max|x|) (to
 * nearest, ties to even), held in 16-bit lanes. Per group of 128 the values are stored in the order the kernels' four
 * 32-lane vectors read them (see {@link Q4_0Int16}), and {@link #laneScales} holds each block's d once per 32-bit lane
 * it covers (4 per block). One instance per thread, reused: products that run together have the same x, so they may
 * share it; batches of rows get one instance per row.
 */
final class Int8Input {
    static final int BLOCK = 32, GROUP = 128;
    /** 256 bits on every CPU, so that the block sums are the same bits under AVX2 and AVX-512. */
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_128;

    short[] values = new short[0];
    float[] laneScales = new float[0];
    /**
     * Σ x over each block of 32, unrounded (a fixed tree of adds), for Q4_K's min term ({@link Q4_KInt16}): in the
     * first of the block's 4 lanes (lane 4k of the group's 16), 0 in the other three.
     */
    float[] laneSums = new float[0];

    private static final ThreadLocal<Int8Input> SCRATCH = ThreadLocal.withInitial(Int8Input::new);
    private static final ThreadLocal<Int8Input[]> ROWS = ThreadLocal.withInitial(() -> new Int8Input[0]);

    private Int8Input() {}

    /** The thread's instance holding x[xOff .. xOff + n) quantised; n is a multiple of {@link #GROUP}. */
    static Int8Input quantize(float[] x, int xOff, int n) { return SCRATCH.get().fill(x, xOff, n); }

    /** The thread's instances holding rows b * xStride .. + n of x quantised, b in [0, batch), as {@link #quantize}. */
    static Int8Input[] quantizeRows(float[] x, int xStride, int batch, int n) {
        Int8Input[] rows = ROWS.get();
        if (rows.length < batch) {
            rows = java.util.Arrays.copyOf(rows, batch);
            for (int b = 0; b < batch; b++) if (rows[b] == null) rows[b] = new Int8Input();
            ROWS.set(rows);
        }
        for (int b = 0; b < batch; b++) rows[b].fill(x, b * xStride, n);
        return rows;
    }

    private Int8Input fill(float[] x, int xOff, int n) {
        if (values.length < n) {
            values = new short[n];
            laneScales = new float[n / 8];
            laneSums = new float[n / 8];
        }
        short[] q = values;
        float[] ls = laneScales, sums = laneSums;
        for (int b = 0; b < n / BLOCK; b++) {
            int src = xOff + BLOCK * b;
            FloatVector v0 = FloatVector.fromArray(F, x, src), v1 = FloatVector.fromArray(F, x, src + 8),
                    v2 = FloatVector.fromArray(F, x, src + 16), v3 = FloatVector.fromArray(F, x, src + 24);
            float max = v0.abs().max(v1.abs()).max(v2.abs().max(v3.abs())).reduceLanes(VectorOperators.MAX); // exact in any order
            float d = max / 127f, inv = max == 0f ? 0f : 127f / max;
            int g = b / 4 * GROUP, k = b % 4;
            for (int m = 0; m < 4; m++) {
                ls[g / 8 + 4 * k + m] = d;
                sums[g / 8 + 4 * k + m] = m == 0 ? Lanes.sum(v0.add(v1).add(v2.add(v3))) : 0f;
            }
            // lanes 8k .. 8k + 7 of the group's four vectors (see Q4_0Int16): four runs of 8 consecutive values
            round(v0, inv).intoArray(q, g + 8 * k);
            round(v2, inv).intoArray(q, g + 32 + 8 * k);
            round(v1, inv).intoArray(q, g + 64 + 8 * k);
            round(v3, inv).intoArray(q, g + 96 + 8 * k);
        }
        return this;
    }

    /** 1.5 · 2^23: adding it and taking it off again rounds |t| < 2^22 to an integer, half to even, as Math.rint. */
    private static final float RINT = 12582912f;

    /** rint(v · inv) as 8 shorts (|v · inv| ≤ 127). */
    private static ShortVector round(FloatVector v, float inv) {
        return (ShortVector) v.mul(inv).add(RINT).sub(RINT).convertShape(VectorOperators.F2S, S, 0);
    }
}
