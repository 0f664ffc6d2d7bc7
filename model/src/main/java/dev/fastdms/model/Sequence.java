package dev.fastdms.model;

import dev.fastdms.cache.CompactKvCache;
import dev.fastdms.cache.DmsConfig;
import dev.fastdms.cache.EvictionPolicy;

/**
 * One generation stream: its compacted KV cache, the next position, and the DMS rule that governs eviction in it
 * (null: nothing is ever evicted).
 */
public final class Sequence {
    /** Receives every DMS decision as it is made (tests and tracing). */
    @FunctionalInterface
    public interface DmsObserver { void decided(int layer, int kvHead, int position, boolean evict); }

    final CompactKvCache cache;
    final DmsConfig dms;
    final EvictionPolicy policy;   // training-free eviction, or null
    int position;
    int promptEnd = -1;            // first position after the first prompt (SnapKV compresses there)
    DmsObserver observer;

    Sequence(CompactKvCache cache, DmsConfig dms, EvictionPolicy policy) {
        this.cache = cache;
        this.dms = dms;
        this.policy = policy;
    }

    public EvictionPolicy policy() { return policy; }

    public CompactKvCache cache() { return cache; }
    public DmsConfig dms() { return dms; }
    /** Position of the next token (= tokens processed so far). */
    public int position() { return position; }
    public void setObserver(DmsObserver o) { this.observer = o; }
}
