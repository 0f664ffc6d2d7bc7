package dev.fastdms.model.train;

/**
 * Hyper-parameters of a DMS retrofit ({@code fastdms train-dms}).
 *
 * @param targetCr     compression ratio the eviction target is raised to, linearly over the run (>= 1)
 * @param window       DMS sliding window written into the checkpoint and used by the soft mask
 * @param steps        optimizer steps
 * @param seqLen       tokens per training sequence
 * @param batch        sequences per step
 * @param lr           AdamW peak learning rate
 * @param weightDecay  AdamW decoupled weight decay
 * @param seed         seeds data order and Gumbel noise: the same seed gives the same checkpoint
 * @param threads      worker threads (results do not depend on it)
 * @param decision     where the eviction decision comes from
 * @param budget       over what the eviction rate must reach its target
 */
public record TrainOptions(double targetCr, int window, int steps, int seqLen, int batch, double lr,
                           double weightDecay, long seed, int threads, Decision decision, Budget budget) {
    /** Over what the compression term measures the eviction rate. */
    public enum Budget {
        /** The mean over all layers and KV heads (the DMS paper's term): heads may settle on very different rates. */
        GLOBAL("global"),
        /** Each (layer, KV head) on its own: every head must evict at least the target rate. */
        PER_HEAD("per-head");

        /** The CLI spelling. */
        public final String cliName;

        Budget(String cliName) { this.cliName = cliName; }

        /** The budget of a CLI spelling, or null. */
        public static Budget ofCliName(String s) {
            for (Budget b : values()) if (b.cliName.equals(s)) return b;
            return null;
        }
    }

    /** The source of the DMS decision logit. */
    public enum Decision {
        /** The borrowed query channel: last channel of each KV group's first query head, zeroed in attention. */
        QUERY_CHANNEL("channel"),
        /**
         * A separate learned projection of the RMS-normed layer input (NVIDIA's {@code dms_separate_alpha}); every query
         * channel is kept.
         */
        ADAPTER("adapter");

        /** The CLI spelling. */
        public final String cliName;

        Decision(String cliName) { this.cliName = cliName; }

        /** The decision of a CLI spelling, or null. */
        public static Decision ofCliName(String s) {
            for (Decision d : values()) if (d.cliName.equals(s)) return d;
            return null;
        }
    }

    /** The borrowed-query-channel retrofit. */
    public TrainOptions(double targetCr, int window, int steps, int seqLen, int batch, double lr,
                        double weightDecay, long seed, int threads) {
        this(targetCr, window, steps, seqLen, batch, lr, weightDecay, seed, threads, Decision.QUERY_CHANNEL);
    }

    /** A retrofit with the paper's global budget. */
    public TrainOptions(double targetCr, int window, int steps, int seqLen, int batch, double lr,
                        double weightDecay, long seed, int threads, Decision decision) {
        this(targetCr, window, steps, seqLen, batch, lr, weightDecay, seed, threads, decision, Budget.GLOBAL);
    }

    public TrainOptions {
        if (decision == null) throw new IllegalArgumentException("decision must be given");
        if (budget == null) throw new IllegalArgumentException("budget must be given");
        if (!(targetCr >= 1) || !Double.isFinite(targetCr)) throw new IllegalArgumentException("target CR must be >= 1, got " + targetCr);
        if (window < 0) throw new IllegalArgumentException("window must be >= 0, got " + window);
        if (steps < 1) throw new IllegalArgumentException("steps must be >= 1, got " + steps);
        if (seqLen < 2) throw new IllegalArgumentException("sequence length must be >= 2, got " + seqLen);
        if (batch < 1) throw new IllegalArgumentException("batch must be >= 1, got " + batch);
        if (!(lr > 0) || !Double.isFinite(lr)) throw new IllegalArgumentException("learning rate must be > 0, got " + lr);
        if (!(weightDecay >= 0) || !Double.isFinite(weightDecay)) throw new IllegalArgumentException("weight decay must be >= 0, got " + weightDecay);
        if (threads < 1) throw new IllegalArgumentException("threads must be >= 1, got " + threads);
    }
}
