package dev.fastdms.model;

import dev.fastdms.cache.DmsConfig;
import dev.fastdms.cache.EvictionPolicy;
import dev.fastdms.cache.KvCacheView;

/**
 * One generation stream as the engine, generators, batch decoder, chat and evaluator see it: the next position, its
 * KV cache's numbers, and the DMS rule that governs eviction in it (null: nothing is ever evicted). Each backend
 * keeps the cache where it computes: {@link JvmSequence} holds the compacted JVM cache, the TornadoVM backend's
 * sequence a device handle.
 */
public interface Sequence {
    /** Receives every DMS decision as it is made (tests and tracing). */
    @FunctionalInterface
    interface DmsObserver { void decided(int layer, int kvHead, int position, boolean evict); }

    /** Position of the next token (= tokens processed so far). */
    int position();

    /** This sequence's KV cache as every backend reports it. */
    KvCacheView kv();

    DmsConfig dms();

    /** The training-free eviction policy, or null (DMS or no eviction). */
    EvictionPolicy policy();

    DmsObserver observer();

    void setObserver(DmsObserver o);

    /** The forced eviction fraction (benchmarking), or negative when the model decides. */
    double forcedEvictFraction();

    /**
     * Benchmarking only: models with random weights make arbitrary DMS decisions, so instead a deterministic
     * pseudo-random fraction of tokens (per layer and head, {@link dev.fastdms.cache.DmsStep#forcedEviction}) is
     * flagged, still through the real delayed-eviction path. Negative restores the model's own decisions.
     */
    void forceEvictFraction(double fraction);
}
