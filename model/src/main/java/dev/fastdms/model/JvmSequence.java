package dev.fastdms.model;

import dev.fastdms.cache.CompactKvCache;
import dev.fastdms.cache.DmsConfig;
import dev.fastdms.cache.EvictionPolicy;
import dev.fastdms.cache.KvCacheView;

/** A sequence of the JVM backend ({@link Transformer}): its compacted per-(layer, KV head) cache lives here. */
public final class JvmSequence implements Sequence {
    final CompactKvCache cache;
    final DmsConfig dms;
    final EvictionPolicy policy;   // training-free eviction, or null
    int position;
    int promptEnd = -1;            // first position after the first prompt (SnapKV compresses there)
    DmsObserver observer;
    double forcedEvictFraction = -1;

    JvmSequence(CompactKvCache cache, DmsConfig dms, EvictionPolicy policy) {
        this.cache = cache;
        this.dms = dms;
        this.policy = policy;
    }

    /** {@code s} as a JVM sequence, or a clear error when another backend made it. */
    /** The JVM sequence behind {@code s}; a device backend's sequence is refused. */
    public static JvmSequence of(Sequence s) {
        if (s instanceof JvmSequence j) return j;
        throw new IllegalArgumentException("this sequence belongs to a device backend, not the jvm one");
    }

    @Override public int position() { return position; }
    public CompactKvCache cache() { return cache; }
    @Override public KvCacheView kv() { return cache; }
    @Override public DmsConfig dms() { return dms; }
    @Override public EvictionPolicy policy() { return policy; }
    @Override public DmsObserver observer() { return observer; }
    @Override public void setObserver(DmsObserver o) { this.observer = o; }
    @Override public double forcedEvictFraction() { return forcedEvictFraction; }

    @Override
    public void forceEvictFraction(double fraction) {
        if (dms == null) throw new IllegalStateException("forcing an eviction fraction needs DMS on this sequence");
        this.forcedEvictFraction = fraction;
    }
}
