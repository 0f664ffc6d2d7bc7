package dev.fastdms.model;

import dev.fastdms.cache.CompactKvCache;
import dev.fastdms.cache.DmsConfig;
import dev.fastdms.cache.EvictionPolicy;
import dev.fastdms.cache.KvCacheView;

/** A sequence of the JVM backend ({@link Transformer}): its compacted per-(layer, KV head) cache lives here. */
public final class JvmSequence extends SequenceBase {
    final CompactKvCache cache;
    final EvictionPolicy policy;   // training-free eviction, or null
    int position;
    int promptEnd = -1;            // first position after the first prompt (SnapKV compresses there)

    JvmSequence(CompactKvCache cache, DmsConfig dms, EvictionPolicy policy) {
        super(dms);
        this.cache = cache;
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
    @Override public EvictionPolicy policy() { return policy; }
}
