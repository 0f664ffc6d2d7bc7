package dev.fastdms.cache;

/**
 * Element type of stored keys and values, chosen per cache (keys and values share it). Attention reads the stored
 * form directly (see {@link KvStore}); bytes per row of {@code d} values are given for d = 64.
 *
 * <ul>
 * <li>{@link #F32}: exact; 4 bytes per value (256 B per row).</li>
 * <li>{@link #F16}: IEEE binary16, round to nearest even, saturating at ±65504; relative error ≤ 2^-11 (~4.9e-4)
 * for normal values; 2 bytes per value (128 B).</li>
 * <li>{@link #BF16}: bfloat16 (the upper half of a float, round to nearest even); relative error ≤ 2^-8 (~3.9e-3);
 * 2 bytes per value (128 B).</li>
 * <li>{@link #FP8_E4M3}: 8-bit float (4 exponent bits, 3 mantissa bits, largest finite 448) times one float scale
 * per token per head, {@code absmax / 448}; relative error ≤ 2^-4 (6.25%) of the value, and at most
 * {@code absmax / 448 * 2^-10} near zero (half the subnormal step); 1 byte per value + 4 per row (68 B).</li>
 * <li>{@link #Q8}: int8 with one float scale per block of 32 values ({@code absmax / 127}, like ggml's Q8_0);
 * absolute error ≤ block absmax / 254; 1 byte per value + 4 per 32 (72 B).</li>
 * </ul>
 */
public enum KvDtype {
    F32, F16, BF16, FP8_E4M3, Q8;
}
