package dev.fastdms.cache;

/**
 * What every backend's KV cache of one sequence reports, wherever it lives (the JVM heap, or device memory for the
 * TornadoVM backend): per (layer, KV head) live lengths, tokens seen, bytes, and the DMS compression ratio.
 */
public interface KvCacheView {
    int layers();
    int kvHeads();
    int headDim();

    /** Tokens stored in one head. */
    int live(int layer, int kvHead);

    /** Tokens seen by one head (every head sees every token). */
    long seenTokens();

    /** Bytes this cache holds, metadata included. */
    long bytesAllocated();

    /** What a dense BF16 cache of the tokens seen would take: 2 (K and V) · layers · kvHeads · headDim · 2 bytes · tokens. */
    default long denseBf16Bytes() { return 2L * layers() * kvHeads() * headDim() * 2L * seenTokens(); }

    /** Tokens stored, summed over layers and heads. */
    default long liveTokens() {
        long n = 0;
        for (int l = 0; l < layers(); l++) for (int g = 0; g < kvHeads(); g++) n += live(l, g);
        return n;
    }

    /** CR = tokens seen / tokens retained, averaged over layers and heads: 1 / mean over heads of (live / seen). */
    default double compressionRatio() {
        long seen = seenTokens();
        if (seen == 0) return 1.0;
        double sum = 0;
        for (int l = 0; l < layers(); l++) for (int g = 0; g < kvHeads(); g++) sum += (double) live(l, g) / seen;
        return layers() * kvHeads() / sum;
    }

    /** Gives the storage back (to the budget, or to the device's free list). */
    void release();
}
