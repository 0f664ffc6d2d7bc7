package dev.fastdms.model.tensor;

import dev.fastdms.cache.Q8Block;

/**
 * Float to stored-type conversions (tests, synthetic models, writers), rounding as ggml's reference quantisers do.
 * Outputs are little-endian bytes in the GGUF block layouts read by the tensor classes.
 */
public final class Quantizer {
    private Quantizer() {}

    /** IEEE half, round to nearest even (the JDK's conversion). */
    public static short toF16(float v) { return Float.floatToFloat16(v); }

    /** bfloat16 rounded to nearest even (not truncated); NaN stays a (quiet) NaN. */
    public static short toBF16(float v) {
        int bits = Float.floatToRawIntBits(v);
        if (Float.isNaN(v)) return (short) ((bits >>> 16) | 0x40);
        // adding 0x7FFF rounds up past the halfway point; the kept low bit makes exact ties go to the even neighbour
        return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
    }

    public static float fromBF16(short h) { return Float.intBitsToFloat(h << 16); }

    public static byte[] toF16(float[] x) {
        byte[] out = new byte[2 * x.length];
        for (int i = 0; i < x.length; i++) putShort(out, 2 * i, toF16(x[i]));
        return out;
    }

    public static byte[] toBF16(float[] x) {
        byte[] out = new byte[2 * x.length];
        for (int i = 0; i < x.length; i++) putShort(out, 2 * i, toBF16(x[i]));
        return out;
    }

    /** Q8_0: per block of 32, {@link Q8Block}'s codes and its scale d stored as f16. */
    public static byte[] toQ8_0(float[] x) {
        checkBlocks(x.length);
        byte[] out = new byte[x.length / 32 * 34];
        for (int b = 0, o = 0; b < x.length; b += 32, o += 34) putShort(out, o, toF16(Q8Block.quantize(x, b, 32, out, o + 2)));
        return out;
    }

    /**
     * Q4_0 as ggml's quantize_row_q4_0_ref: m = the element of largest magnitude (with its sign), d = m / -8, q =
     * min(15, trunc(x / d + 8.5)); so m itself maps to q = 0 exactly and -m would clamp at 15.
     */
    public static byte[] toQ4_0(float[] x) {
        checkBlocks(x.length);
        byte[] out = new byte[x.length / 32 * 18];
        for (int b = 0, o = 0; b < x.length; b += 32, o += 18) {
            float amax = 0f, max = 0f;
            for (int j = 0; j < 32; j++) {
                float v = x[b + j];
                if (Math.abs(v) > amax) { amax = Math.abs(v); max = v; }
            }
            float d = max / -8f, id = d != 0f ? 1f / d : 0f;
            putShort(out, o, toF16(d));
            for (int j = 0; j < 16; j++) {
                int lo = Math.min(15, (int) (x[b + j] * id + 8.5f)), hi = Math.min(15, (int) (x[b + 16 + j] * id + 8.5f));
                out[o + 2 + j] = (byte) (lo | (hi << 4));
            }
        }
        return out;
    }

    private static void checkBlocks(int n) {
        if (n % 32 != 0) throw new IllegalArgumentException(n + " values is not a whole number of 32-value blocks");
    }

    private static void putShort(byte[] b, int off, short v) {
        b[off] = (byte) v;
        b[off + 1] = (byte) (v >> 8);
    }
}
