package dev.fastdms.model.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** bfloat16: the upper half of an F32. */
public final class BF16Tensor extends FloatTensor {
    static final ValueLayout.OfShort LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    BF16Tensor(MemorySegment data, long size) { super(data, size); }

    @Override public GgmlType type() { return GgmlType.BF16; }

    @Override public float getFloat(long i) { return Float.intBitsToFloat(data.getAtIndex(LE, i) << 16); }
}
