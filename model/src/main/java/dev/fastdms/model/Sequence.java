package dev.fastdms.model;

import dev.fastdms.cache.CompactKvCache;
import dev.fastdms.cache.DmsConfig;
import dev.fastdms.cache.EvictionPolicy;
import dev.fastdms.cache.KvCacheView;

/**
 * One generation stream: its compacted KV cache, the next position, and the DMS rule that governs eviction in it
 * (null: nothing is ever evicted).
 */
public final class Sequence {
    /** Receives every DMS decision as it is made (tests and tracing). */
    @FunctionalInterface
    public interface DmsObserver { void decided(int layer, int kvHead, int position, boolean evict); }

    final CompactKvCache cache;    // the JVM backend's cache, or null when the cache lives on a device
    final KvCacheView kv;
    final Object backendState;     // a device backend's handle (its cache slot), or null
    final DmsConfig dms;
    final EvictionPolicy policy;   // training-free eviction, or null
    int position;
    int promptEnd = -1;            // first position after the first prompt (SnapKV compresses there)
    DmsObserver observer;
    double forcedEvictFraction = -1; // benchmarking only: see forceEvictFraction

    Sequence(CompactKvCache cache, DmsConfig dms, EvictionPolicy policy) {
        this.cache = cache;
        this.kv = cache;
        this.backendState = null;
        this.dms = dms;
        this.policy = policy;
    }

    private Sequence(KvCacheView kv, DmsConfig dms, Object backendState) {
        this.cache = null;
        this.kv = kv;
        this.backendState = backendState;
        this.dms = dms;
        this.policy = null;
    }

    /** A sequence whose KV cache a device backend keeps (reported through {@code kv}); {@code state} is its handle. */
    public static Sequence onDevice(KvCacheView kv, DmsConfig dms, Object state) { return new Sequence(kv, dms, state); }

    /** The device backend's handle for this sequence, or null for a JVM sequence. */
    public Object backendState() { return backendState; }

    /** For device backends: the sequence has consumed {@code n} more positions. */
    public void advance(int n) { position += n; }

    /** The forced eviction fraction (benchmarking), or negative when the model decides. */
    public double forcedEvictFraction() { return forcedEvictFraction; }

    public DmsObserver observer() { return observer; }

    public EvictionPolicy policy() { return policy; }

    /**
     * Benchmarking only: models with random weights make arbitrary DMS decisions, so instead a deterministic
     * pseudo-random fraction of tokens (per layer and head) is flagged evictable — still through the real delayed
     * eviction path. Negative restores the model's own decisions.
     */
    public void forceEvictFraction(double fraction) {
        if (dms == null) throw new IllegalStateException("forcing an eviction fraction needs DMS on this sequence");
        this.forcedEvictFraction = fraction;
    }

    /** The forced decision for (layer, head, token): a hash of the three below the fraction. */
    boolean forcedDecision(int layer, int head, int pos) {
        long h = (pos * 0x9E3779B97F4A7C15L) ^ ((long) layer << 40) ^ ((long) head << 20);
        h ^= h >>> 31; h *= 0xBF58476D1CE4E5B9L; h ^= h >>> 29;
        return (h >>> 11) * 0x1.0p-53 < forcedEvictFraction;
    }

    /**
     * Benchmarking only: appends {@code tokens} tokens of random keys and values to every head without running the
     * model (to measure decode at a depth the prefill would take too long to reach on a small machine). DMS flags
     * follow the forced fraction through the real delayed-eviction path.
     */
    public void fillRandom(int tokens, long seed) {
        if (cache == null) throw new IllegalStateException("fillRandom works on JVM sequences only");
        java.util.SplittableRandom r = new java.util.SplittableRandom(seed);
        int d = cache.headDim();
        float[] k = new float[d], v = new float[d];
        boolean nvidia = dms != null && dms.convention() == DmsConfig.Convention.NVIDIA;
        for (int t = 0; t < tokens; t++) {
            int pos = position + t;
            for (int l = 0; l < cache.layers(); l++) {
                for (int g = 0; g < cache.kvHeads(); g++) {
                    for (int i = 0; i < d; i++) { k[i] = (float) r.nextGaussian(); v[i] = (float) r.nextGaussian(); }
                    var head = cache.head(l, g);
                    boolean evict = dms != null && forcedEvictFraction >= 0 && forcedDecision(l, g, nvidia ? pos - 1 : pos);
                    if (evict && nvidia && pos > 0) head.markEvicted(pos - 1);
                    head.reclaim(pos);
                    head.append(pos, k, 0, v, 0);
                    if (evict && !nvidia) head.markEvicted(pos);
                }
            }
        }
        position += tokens;
    }

    /** The JVM cache; device sequences have none (use {@link #kv()}). */
    public CompactKvCache cache() {
        if (cache == null) throw new IllegalStateException("this sequence's KV cache lives on the device; use kv()");
        return cache;
    }

    /** This sequence's KV cache as every backend reports it. */
    public KvCacheView kv() { return kv; }
    public DmsConfig dms() { return dms; }
    /** Position of the next token (= tokens processed so far). */
    public int position() { return position; }
    public void setObserver(DmsObserver o) { this.observer = o; }
}
