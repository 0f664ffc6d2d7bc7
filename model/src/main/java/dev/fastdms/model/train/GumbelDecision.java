package dev.fastdms.model.train;

/**
 * The relaxed DMS decision of one (token, KV head): z = (alphaScale·q_chan - alphaOffset + logistic noise) / τ,
 * α = σ(z) (Gumbel-sigmoid, the difference of two Gumbels being logistic); a key whose decision is α contributes
 * log(1 - α) = -softplus(z) to attention logits once it leaves the window, exact for any z (no clamp needed).
 */
final class GumbelDecision {
    /** NVIDIA's reference temperature. */
    static final double TAU = 0.1;

    final double alphaScale, alphaOffset, tau;

    GumbelDecision(double alphaScale, double alphaOffset, double tau) {
        this.alphaScale = alphaScale;
        this.alphaOffset = alphaOffset;
        this.tau = tau;
    }

    /** The hard (inference) logit: evict when > 0. */
    double logit(double qChannel) { return alphaScale * qChannel - alphaOffset; }

    double relaxed(double qChannel, double noise) { return (logit(qChannel) + noise) / tau; }

    static double alpha(double z) { return 1 / (1 + Math.exp(-z)); }

    /** log(1 - σ(z)). */
    static double logKeep(double z) { return -(Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z)))); }

    /** d(loss)/d(q_chan) from the gradients with respect to α and to log(1 - α). */
    double channelGradient(double z, double dAlpha, double dLogKeep) {
        double a = alpha(z);
        return (dAlpha * a * (1 - a) - dLogKeep * a) * alphaScale / tau;
    }

    /** Logistic noise log(u) - log(1 - u) from a counter-based hash: the same ids give the same noise on any thread. */
    static double logisticNoise(long seed, long step, long row, long layer, long token, long head) {
        long h = seed;
        for (long v : new long[]{step, row, layer, token, head}) h = mix(h ^ mix(v + 0x9E3779B97F4A7C15L));
        double u = ((h >>> 11) + 0.5) * 0x1.0p-53;
        return Math.log(u) - Math.log1p(-u);
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
