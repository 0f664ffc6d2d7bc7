package dev.fastdms.model;

import dev.fastdms.cache.DmsConfig;

/** What every backend's sequence keeps alike: its DMS rule, the decision observer and a forced eviction fraction. */
public abstract class SequenceBase implements Sequence {
    final DmsConfig dms;
    DmsObserver observer;
    double forcedEvictFraction = -1;

    protected SequenceBase(DmsConfig dms) { this.dms = dms; }

    @Override public final DmsConfig dms() { return dms; }
    @Override public final DmsObserver observer() { return observer; }
    @Override public final void setObserver(DmsObserver o) { this.observer = o; }
    @Override public final double forcedEvictFraction() { return forcedEvictFraction; }

    @Override
    public final void forceEvictFraction(double fraction) {
        if (dms == null) throw new IllegalStateException("forcing an eviction fraction needs DMS on this sequence");
        this.forcedEvictFraction = fraction;
    }
}
