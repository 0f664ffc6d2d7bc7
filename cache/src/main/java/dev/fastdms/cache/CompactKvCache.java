package dev.fastdms.cache;

/**
 * The DMS-compressed KV cache of one sequence: one {@link HeadKv} per (layer, KV head), each with its own live
 * length, since DMS evicts per head (see {@link HeadKv} for the visibility rule and the compaction). All heads store
 * keys and values in the same {@link KvDtype}, grow in blocks of {@code blockTokens} slots and may share a
 * {@link KvBudget} with other sequences.
 *
 * <p>Accounting: {@link #bytesAllocated()} is what is really held (payload, scales, metadata);
 * {@link #denseBf16Bytes()} what a dense BF16 cache of every token seen would take; {@link #compressionRatio()} is
 * the DMS compression ratio as the project's golden files define it.
 */
public final class CompactKvCache implements KvCacheView {
    /** Slots added each time a head's storage grows. */
    public static final int DEFAULT_BLOCK_TOKENS = 256;

    private final int layers, kvHeads, headDim;
    private final KvDtype dtype;
    private final HeadKv[] heads;

    /** @param window delayed-eviction window (ignored while nothing is flagged evicted) */
    public CompactKvCache(int layers, int kvHeads, int headDim, KvDtype dtype, int window) {
        this(layers, kvHeads, headDim, dtype, window, DEFAULT_BLOCK_TOKENS, null);
    }

    /** Everything that shapes a cache; {@code budget} may be null (no limit). */
    public record Spec(int layers, int kvHeads, int headDim, KvDtype dtype, int window, int blockTokens, KvBudget budget) {
        public Spec {
            if (layers < 1 || kvHeads < 1 || headDim < 1) throw new IllegalArgumentException("layers, kvHeads and headDim must be >= 1");
            if (dtype == null) throw new IllegalArgumentException("dtype is required");
            if (window < 0) throw new IllegalArgumentException("DMS window must be >= 0, got " + window);
            if (blockTokens < 1) throw new IllegalArgumentException("blockTokens must be >= 1, got " + blockTokens);
        }

        public static Spec of(int layers, int kvHeads, int headDim, KvDtype dtype, int window) {
            return new Spec(layers, kvHeads, headDim, dtype, window, DEFAULT_BLOCK_TOKENS, null);
        }

        public Spec withBlockTokens(int b) { return new Spec(layers, kvHeads, headDim, dtype, window, b, budget); }
        public Spec withBudget(KvBudget b) { return new Spec(layers, kvHeads, headDim, dtype, window, blockTokens, b); }
    }

    public CompactKvCache(Spec spec) {
        this(spec.layers(), spec.kvHeads(), spec.headDim(), spec.dtype(), spec.window(), spec.blockTokens(), spec.budget());
    }

    public CompactKvCache(int layers, int kvHeads, int headDim, KvDtype dtype, int window, int blockTokens, KvBudget budget) {
        this.layers = layers;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.dtype = dtype;
        this.heads = new HeadKv[layers * kvHeads];
        for (int i = 0; i < heads.length; i++) heads[i] = new HeadKv(headDim, blockTokens, window, dtype, budget);
    }

    @Override public int layers() { return layers; }
    @Override public int kvHeads() { return kvHeads; }
    @Override public int headDim() { return headDim; }
    public KvDtype dtype() { return dtype; }

    public HeadKv head(int layer, int kvHead) { return heads[layer * kvHeads + kvHead]; }

    @Override public int live(int layer, int kvHead) { return head(layer, kvHead).live(); }

    /** Live tokens of every head: [layer][kvHead]. */
    public int[][] liveCounts() {
        int[][] r = new int[layers][kvHeads];
        for (int l = 0; l < layers; l++) for (int g = 0; g < kvHeads; g++) r[l][g] = head(l, g).live();
        return r;
    }

    /** Tokens stored, summed over layers and heads. */
    @Override
    public long liveTokens() {
        long n = 0;
        for (HeadKv h : heads) n += h.live();
        return n;
    }

    /** Tokens seen by one head (every head sees every token). */
    @Override
    public long seenTokens() { return heads.length == 0 ? 0 : heads[0].seen(); }

    @Override
    public long bytesAllocated() {
        long b = 0;
        for (HeadKv h : heads) b += h.bytesAllocated();
        return b;
    }

    /** What a dense BF16 cache of the tokens seen would take: 2 (K and V) · layers · kvHeads · headDim · 2 bytes · tokens. */
    @Override
    public long denseBf16Bytes() { return 2L * layers * kvHeads * headDim * 2L * seenTokens(); }

    /**
     * CR = tokens seen / tokens retained, averaged over layers and heads exactly as the golden files do:
     * {@code 1 / mean over (layer, head) of (live / seen)} (a head that has seen nothing counts as 1). Not the
     * mean of the per-head ratios, which one nearly empty head would dominate.
     */
    @Override
    public double compressionRatio() {
        double sum = 0;
        for (HeadKv h : heads) sum += h.seen() == 0 ? 1.0 : (double) h.live() / h.seen();
        return heads.length / sum;
    }

    /** The most bytes that appending {@code tokens} more tokens can charge (see {@link HeadKv#growthBound}). */
    public long growthBound(int tokens) {
        long b = 0;
        for (HeadKv h : heads) b += h.growthBound(tokens);
        return b;
    }

    /** Returns every head's blocks to the budget. */
    @Override
    public void release() {
        for (HeadKv h : heads) h.release();
    }
}
