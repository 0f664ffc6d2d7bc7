package dev.fastdms.cache;

/**
 * The Q8 rounding rule, written once: a block of values becomes int8 codes q = round-half-away(x / d) with the scale
 * d = absmax / 127 (ggml's Q8_0 reference). Every Q8 writer uses it: the KV cache's Q8 rows ({@link KvStore}),
 * GGUF Q8_0 tensors (model's Quantizer), the weights the TornadoVM backend re-quantises (DeviceWeights); the device
 * kernel that quantises KV rows (Kernels.quantizeQ8Row) mirrors it.
 */
public final class Q8Block {
    private Q8Block() {}

    /** d = absmax / 127 of x[off, off + n). */
    public static float scale(float[] x, int off, int n) {
        float max = 0f;
        for (int i = 0; i < n; i++) max = Math.max(max, Math.abs(x[off + i]));
        return max / 127f;
    }

    /** 1 / d, or 0 for an all-zero block (its codes are all 0). */
    public static float inverse(float d) { return d != 0f ? 1f / d : 0f; }

    /** round-half-away(x * inv) within ±127 (C's roundf; computed in double, where x + 0.5 is exact). */
    public static byte code(float x, float inv) {
        float v = x * inv;
        int q = (int) (v < 0 ? -Math.floor(0.5 - v) : Math.floor(v + 0.5));
        return (byte) Math.max(-127, Math.min(127, q));
    }

    /** Codes of x[off, off + n) into q[qOff ..]; returns the scale d. */
    public static float quantize(float[] x, int off, int n, byte[] q, int qOff) {
        float d = scale(x, off, n), inv = inverse(d);
        for (int i = 0; i < n; i++) q[qOff + i] = code(x[off + i], inv);
        return d;
    }
}
