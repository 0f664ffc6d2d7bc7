package dev.fastdms.model.tensor;

/**
 * x quantised to int8 once per product for the integer kernels ({@link Q4_0Int16}, {@link Q4_KInt16}), as llama.cpp's Q8_0 activations:
 * each block of 32 values gets the scale d = max|x| / 127 and the values round(x / d), held in 16-bit lanes. Per
 * group of 128 the values are stored in the order the kernel's four 32-lane vectors read them (see
 * {@link Q4_0Int16}), and {@link #laneScales} holds each block's d once per 32-bit lane it covers (4 per block).
 * One instance per thread, reused: products that run together have the same x, so they may share it.
 */
final class Int8Input {
    static final int BLOCK = 32, GROUP = 128;

    short[] values = new short[0];
    float[] laneScales = new float[0];
    /**
     * Σ x over each block of 32, unrounded, in order, for Q4_K's min term ({@link Q4_KInt16}): in the first of the
     * block's 4 lanes (lane 4k of the group's 16), 0 in the other three.
     */
    float[] laneSums = new float[0];

    private static final ThreadLocal<Int8Input> SCRATCH = ThreadLocal.withInitial(Int8Input::new);

    private Int8Input() {}

    /** The thread's instance holding x[xOff .. xOff + n) quantised; n is a multiple of {@link #GROUP}. */
    static Int8Input quantize(float[] x, int xOff, int n) {
        Int8Input in = SCRATCH.get();
        if (in.values.length < n) {
            in.values = new short[n];
            in.laneScales = new float[n / 8];
            in.laneSums = new float[n / 8];
        }
        short[] q = in.values;
        float[] ls = in.laneScales, sums = in.laneSums;
        for (int b = 0; b < n / BLOCK; b++) {
            int src = xOff + BLOCK * b;
            float max = 0f, sum = 0f;
            for (int i = 0; i < BLOCK; i++) {
                max = Math.max(max, Math.abs(x[src + i]));
                sum += x[src + i];
            }
            float d = max / 127f, inv = max == 0f ? 0f : 127f / max;
            int g = b / 4 * GROUP, k = b % 4;
            for (int m = 0; m < 4; m++) {
                ls[g / 8 + 4 * k + m] = d;
                sums[g / 8 + 4 * k + m] = m == 0 ? sum : 0f;
            }
            for (int j = 0; j < 8; j++) { // lane 8k + j of the group's four vectors (see Q4_0Int16)
                q[g + 8 * k + j] = (short) Math.round(x[src + j] * inv);
                q[g + 32 + 8 * k + j] = (short) Math.round(x[src + 16 + j] * inv);
                q[g + 64 + 8 * k + j] = (short) Math.round(x[src + 8 + j] * inv);
                q[g + 96 + 8 * k + j] = (short) Math.round(x[src + 24 + j] * inv);
            }
        }
        return in;
    }
}
