package dev.fastdms.model.train;

/**
 * The eviction rate that gives the engine's CR = targetCr at the last query of a seqLen sequence: the last
 * window + 1 tokens are always retained, a fraction e of the older seqLen - window - 1 is evicted, so
 * seqLen / (window + 1 + (1 - e)(seqLen - window - 1)) = targetCr. The target rises linearly from 0 over the first
 * three quarters of the run and then holds, so the model ends trained at the rate it is exported with.
 */
public final class EvictionTarget {
    static final double RAMP_FRACTION = 0.75;

    final double finalRate;
    private final int rampSteps;

    EvictionTarget(double targetCr, int window, int seqLen, int steps) {
        finalRate = rate(targetCr, window, seqLen);
        rampSteps = Math.max(1, (int) Math.round(steps * RAMP_FRACTION));
    }

    /** The highest CR a sequence of seqLen can give: its last window + 1 tokens (all, if fewer) are always retained. */
    public static double maxCr(int window, int seqLen) { return (double) seqLen / Math.min(seqLen, window + 1); }

    static double rate(double targetCr, int window, int seqLen) {
        if (targetCr == 1) return 0;
        int older = seqLen - window - 1;
        double retained = seqLen / targetCr;
        if (older <= 0 || retained < window + 1) {
            throw new IllegalArgumentException("target CR " + targetCr + " is out of reach at sequence length " + seqLen
                    + " with window " + window + ": the last " + Math.min(seqLen, window + 1) + " tokens are always retained, so the CR is at most "
                    + maxCr(window, seqLen));
        }
        return 1 - (retained - (window + 1)) / older;
    }

    /** The target of step s (0-based). */
    double at(int s) { return finalRate * Math.min(1.0, (s + 1.0) / rampSteps); }
}
