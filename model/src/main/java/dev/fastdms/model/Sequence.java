package dev.fastdms.model;

import dev.fastdms.cache.CompactKvCache;
import dev.fastdms.cache.DmsConfig;

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
    int position;
    DmsObserver observer;

    Sequence(CompactKvCache cache, DmsConfig dms) {
        this.cache = cache;
        this.dms = dms;
    }

    public CompactKvCache cache() { return cache; }
    public DmsConfig dms() { return dms; }
    /** Position of the next token (= tokens processed so far). */
    public int position() { return position; }
    public void setObserver(DmsObserver o) { this.observer = o; }
}
