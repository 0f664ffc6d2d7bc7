package dev.fastdms.tornado;

import dev.fastdms.cache.DmsConfig;
import dev.fastdms.cache.EvictionPolicy;
import dev.fastdms.cache.KvCacheView;
import dev.fastdms.model.SequenceBase;

/**
 * A sequence of the TornadoVM backend: its compacted cache lives on the device, in the sequence slot this handle
 * names; {@link #kv()} reads its numbers back on demand. Training-free policies do not run on the device.
 */
final class DeviceSequence extends SequenceBase {
    final TornadoForward owner;
    final int slot;
    final KvCacheView kv;
    private int position;
    boolean stale = true, released;   // stale: the device's live counts changed since they were last read

    DeviceSequence(TornadoForward owner, int slot, DmsConfig dms, KvCacheView kv) {
        super(dms);
        this.owner = owner;
        this.slot = slot;
        this.kv = kv;
    }

    /** The step the device accepted consumed {@code n} more positions. */
    void advance(int n) { position += n; }

    @Override public int position() { return position; }
    @Override public KvCacheView kv() { return kv; }
    @Override public EvictionPolicy policy() { return null; }
}
