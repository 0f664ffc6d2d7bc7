package dev.fastdms.cache;

/**
 * The KV cache of one sequence: one {@link HeadKv} per (layer, KV head), each with its own live length.
 */
public final class CompactKvCache {
    private final int layers, kvHeads, headDim;
    private final KvDtype dtype;
    private final HeadKv[] heads;

    /** @param window delayed-eviction window (ignored while nothing is flagged evicted) */
    public CompactKvCache(int layers, int kvHeads, int headDim, KvDtype dtype, int window) {
        this.layers = layers;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.dtype = dtype;
        this.heads = new HeadKv[layers * kvHeads];
        for (int i = 0; i < heads.length; i++) heads[i] = new HeadKv(headDim, 256, window);
    }

    public int layers() { return layers; }
    public int kvHeads() { return kvHeads; }
    public int headDim() { return headDim; }
    public KvDtype dtype() { return dtype; }

    public HeadKv head(int layer, int kvHead) { return heads[layer * kvHeads + kvHead]; }

    /** Largest live length over all heads (scratch sizing). */
    public int maxLive() {
        int m = 0;
        for (HeadKv h : heads) m = Math.max(m, h.live());
        return m;
    }

    public long bytesAllocated() {
        long b = 0;
        for (HeadKv h : heads) b += h.bytesAllocated();
        return b;
    }

    /** CR = tokens seen / tokens retained, averaged over layers and heads (the mean of retained/seen, inverted). */
    public double compressionRatio() {
        double sum = 0;
        for (HeadKv h : heads) sum += h.seen() == 0 ? 1.0 : (double) h.live() / h.seen();
        return heads.length / sum;
    }
}
