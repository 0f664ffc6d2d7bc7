package dev.fastdms.model.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** IEEE half floats. */
public final class F16Tensor extends FloatTensor {
    static final ValueLayout.OfShort LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    F16Tensor(MemorySegment data, long size) { super(data, size); }

    @Override public GgmlType type() { return GgmlType.F16; }

    @Override public float getFloat(long i) { return Float.float16ToFloat(data.getAtIndex(LE, i)); }
}
