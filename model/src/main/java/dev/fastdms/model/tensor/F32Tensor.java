package dev.fastdms.model.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** 32-bit floats. */
public final class F32Tensor extends FloatTensor {
    static final ValueLayout.OfFloat LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    F32Tensor(MemorySegment data, long size) { super(data, size); }

    /** A heap-backed F32 tensor (tests, small derived weights). */
    public static F32Tensor wrap(float[] values) { return new F32Tensor(MemorySegment.ofArray(values), values.length); }

    @Override public GgmlType type() { return GgmlType.F32; }

    @Override public float getFloat(long i) { return data.getAtIndex(LE, i); }
}
