package dev.fastdms.model.tensor;

import dev.fastdms.simd.Lanes;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** 32-bit floats. */
public final class F32Tensor extends FloatTensor {
    static final ValueLayout.OfFloat LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;

    F32Tensor(MemorySegment data, long size) { super(data, size); }

    /** A heap-backed F32 tensor (tests, small derived weights). */
    public static F32Tensor wrap(float[] values) { return new F32Tensor(MemorySegment.ofArray(values), values.length); }

    @Override public GgmlType type() { return GgmlType.F32; }

    @Override public float getFloat(long i) { return data.getAtIndex(LE, i); }

    @Override
    public float dot(long offset, float[] x, int xOff, int n) {
        FloatVector acc = FloatVector.zero(F);
        int i = 0;
        long base = offset * 4;
        for (; i + 8 <= n; i += 8) {
            acc = FloatVector.fromMemorySegment(F, data, base + 4L * i, ByteOrder.LITTLE_ENDIAN).fma(FloatVector.fromArray(F, x, xOff + i), acc);
        }
        float s = Lanes.sum(acc);
        for (; i < n; i++) s += getFloat(offset + i) * x[xOff + i];
        return s;
    }

    @Override
    public void copyTo(long offset, float[] out, int outOff, int n) {
        MemorySegment.copy(data, LE, offset * 4, out, outOff, n);
    }
}
