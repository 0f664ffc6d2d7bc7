package dev.fastdms.tornado;

import dev.fastdms.cache.DmsConfig;
import dev.fastdms.cache.EvictionPolicy;
import dev.fastdms.cache.KvCacheView;
import dev.fastdms.model.Sequence;

/**
 * A sequence of the TornadoVM backend: its compacted cache lives on the device, in the sequence slot this handle
 * names; {@link #kv()} reads its numbers back on demand. Training-free policies do not run on the device.
 */
final class DeviceSequence implements Sequence {
    final TornadoForward owner;
    final int slot;
    final KvCacheView kv;
    private final DmsConfig dms;
    private int position;
    private DmsObserver observer;
    private double forcedEvictFraction = -1;
    boolean stale = true, released;   // stale: the device's live counts changed since they were last read

    DeviceSequence(TornadoForward owner, int slot, DmsConfig dms, KvCacheView kv) {
        this.owner = owner;
        this.slot = slot;
        this.dms = dms;
        this.kv = kv;
    }

    /** The step the device accepted consumed {@code n} more positions. */
    void advance(int n) { position += n; }

    @Override public int position() { return position; }
    @Override public KvCacheView kv() { return kv; }
    @Override public DmsConfig dms() { return dms; }
    @Override public EvictionPolicy policy() { return null; }
    @Override public DmsObserver observer() { return observer; }
    @Override public void setObserver(DmsObserver o) { this.observer = o; }
    @Override public double forcedEvictFraction() { return forcedEvictFraction; }

    @Override
    public void forceEvictFraction(double fraction) {
        if (dms == null) throw new IllegalStateException("forcing an eviction fraction needs DMS on this sequence");
        this.forcedEvictFraction = fraction;
    }
}
