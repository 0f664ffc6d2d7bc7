package dev.fastdms.cache;

/**
 * DMS parameters. The eviction decision for KV head g comes from a borrowed query neuron: the last channel of the first
 * query head of g's group, before RoPE: {@code logit = alphaScale * q[d-1] - alphaOffset}, evict when {@code logit > 0}.
 * An evicted token stays visible while {@code q - p <= window}.
 */
public record DmsConfig(int window, float alphaScale, float alphaOffset, Convention convention) {
    public static final float DEFAULT_ALPHA_SCALE = 100f;
    public static final float DEFAULT_ALPHA_OFFSET = 5f;

    /** Which token produces the decision for token p. */
    public enum Convention {
        /** NVIDIA's: token p+1 decides for p (the last token has no decision yet). */
        NVIDIA,
        /** FastDMS's: token p decides for itself. */
        FASTDMS
    }

    public DmsConfig {
        if (window < 0) throw new IllegalArgumentException("DMS window must be >= 0, got " + window);
        if (!Float.isFinite(alphaScale) || !Float.isFinite(alphaOffset)) {
            throw new IllegalArgumentException("DMS alpha scale and offset must be finite, got " + alphaScale + " and " + alphaOffset);
        }
        if (convention == null) convention = Convention.NVIDIA;
    }

    public boolean evicts(float qLastChannel) { return alphaScale * qLastChannel - alphaOffset > 0f; }
}
