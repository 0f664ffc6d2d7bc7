package dev.fastdms.cache;

/**
 * Training-free KV eviction for models without a DMS checkpoint, on the same compacted storage as DMS: after each
 * step, a head holding more tokens than its budget removes the lowest-ranked ones (the last slot moves into each
 * hole). The budget is a token count or {@code seen / targetCr}; the {@code recent} newest tokens are never evicted.
 *
 * <ul>
 * <li>{@code sink-window} (StreamingLLM): keep the first {@code sinks} tokens and the most recent ones.</li>
 * <li>{@code knorm}: keep the keys of lowest L2 norm (low-norm keys draw the most attention).</li>
 * <li>{@code tova}: evict the token the current query attends to least (averaged over the group's query heads).</li>
 * <li>{@code h2o}: evict the token with the least attention accumulated over all queries so far (heavy hitters stay).</li>
 * <li>{@code snapkv}: once, at the end of the prompt: score prompt tokens by the attention of the last
 * {@code obsWindow} prompt queries, max-pooled over {@code pool} neighbours, and keep the best; decode adds tokens
 * without eviction.</li>
 * </ul>
 */
public final class EvictionPolicy {
    public enum Kind { SINK_WINDOW, KNORM, TOVA, H2O, SNAPKV }

    /** @param budgetTokens fixed tokens per head, or 0 to use targetCr */
    public record Spec(Kind kind, double targetCr, int budgetTokens, int sinks, int recent, int obsWindow, int pool) {
        public Spec {
            if (budgetTokens < 0) throw new IllegalArgumentException("token budget must be >= 0");
            if (budgetTokens == 0 && !(targetCr >= 1)) throw new IllegalArgumentException("target CR must be >= 1, got " + targetCr);
            if (sinks < 0 || recent < 1 || obsWindow < 1 || pool < 1) throw new IllegalArgumentException("policy parameters must be positive");
        }

        public static Spec of(Kind kind, double targetCr, int budgetTokens) {
            return new Spec(kind, targetCr, budgetTokens, 4, 16, 32, 7);
        }

        public String describe() {
            String k = kind.name().toLowerCase().replace('_', '-');
            return k + (budgetTokens > 0 ? ":tokens=" + budgetTokens : ":cr=" + targetCr);
        }
    }

    private final Spec spec;

    public EvictionPolicy(Spec spec) { this.spec = spec; }

    public Spec spec() { return spec; }

    /** Sets up a new head to record what this policy ranks by; {@code promptEnd} is the first position after the prompt. */
    public void prepare(HeadKv h, int promptEnd) {
        switch (spec.kind()) {
            case KNORM -> h.trackScores(HeadKv.ScoreMode.KEY_NORM, Integer.MIN_VALUE);
            case TOVA -> h.trackScores(HeadKv.ScoreMode.LAST_ATTENTION, Integer.MIN_VALUE);
            case H2O -> h.trackScores(HeadKv.ScoreMode.ACCUMULATED_ATTENTION, Integer.MIN_VALUE);
            case SNAPKV -> h.trackScores(HeadKv.ScoreMode.ACCUMULATED_ATTENTION, promptEnd - spec.obsWindow());
            case SINK_WINDOW -> { }
        }
    }

    /** Tokens a head may keep after seeing {@code seen}. */
    int budget(long seen) {
        long b = spec.budgetTokens() > 0 ? spec.budgetTokens() : (long) Math.ceil(seen / spec.targetCr());
        return (int) Math.max(b, spec.recent() + (spec.kind() == Kind.SINK_WINDOW ? spec.sinks() : 0));
    }

    /**
     * Evicts down to the budget after the step whose next query is at {@code nextQuery}. SnapKV compresses only when
     * the prompt has just been processed ({@code nextQuery == promptEnd}).
     */
    public void enforce(HeadKv h, int nextQuery, int promptEnd) {
        if (spec.kind() == Kind.SNAPKV) {
            if (nextQuery != promptEnd) return;
            snap(h, nextQuery);
            return;
        }
        int budget = budget(h.seen());
        while (h.live() > budget) {
            int victim = -1;
            float best = 0f;
            int oldest = Integer.MAX_VALUE;
            for (int s = 0; s < h.live(); s++) {
                int p = h.position(s);
                if (nextQuery - p <= spec.recent()) continue;
                switch (spec.kind()) {
                    case SINK_WINDOW -> {
                        if (p >= spec.sinks() && p < oldest) { oldest = p; victim = s; }
                    }
                    case KNORM -> { if (victim < 0 || h.score(s) > best) { best = h.score(s); victim = s; } }
                    default -> { if (victim < 0 || h.score(s) < best) { best = h.score(s); victim = s; } }
                }
            }
            if (victim < 0) return;
            h.removeSlot(victim);
        }
    }

    /** SnapKV: pool the observation window's attention over neighbouring positions and keep the top tokens. */
    private void snap(HeadKv h, int nextQuery) {
        int budget = budget(h.seen());
        int n = h.live();
        if (n <= budget) return;
        // scores by position (prompt positions are 0..nextQuery-1 and all present before the first compression)
        int span = nextQuery;
        float[] byPos = new float[span];
        int[] slotOf = new int[span];
        java.util.Arrays.fill(slotOf, -1);
        for (int s = 0; s < n; s++) {
            int p = h.position(s);
            if (p < span) { byPos[p] = h.score(s); slotOf[p] = s; }
        }
        float[] pooled = new float[span];
        int r = spec.pool() / 2;
        for (int p = 0; p < span; p++) {
            float m = 0f;
            for (int j = Math.max(0, p - r); j <= Math.min(span - 1, p + r); j++) m = Math.max(m, byPos[j]);
            pooled[p] = m;
        }
        // keep the recent window and the best-pooled rest up to the budget
        Integer[] order = new Integer[span];
        for (int p = 0; p < span; p++) order[p] = p;
        java.util.Arrays.sort(order, (a, b) -> Float.compare(pooled[b], pooled[a]));
        boolean[] keep = new boolean[span];
        int kept = 0;
        for (int p = Math.max(0, span - spec.recent()); p < span; p++) { keep[p] = true; kept++; }
        for (int i = 0; i < span && kept < budget; i++) if (!keep[order[i]]) { keep[order[i]] = true; kept++; }
        // remove from the highest slot down so the slot indices still to visit stay valid
        for (int s = n - 1; s >= 0; s--) {
            int p = h.position(s);
            if (p < span && !keep[p]) h.removeSlot(s);
        }
        h.trackScores(HeadKv.ScoreMode.NONE, Integer.MAX_VALUE);
    }
}
