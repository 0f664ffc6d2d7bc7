package dev.fastdms.model.tensor;

import dev.fastdms.simd.Lanes;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** bfloat16: the upper half of an F32. */
public final class BF16Tensor extends FloatTensor {
    static final ValueLayout.OfShort LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;

    BF16Tensor(MemorySegment data, long size) { super(data, size); }

    @Override public GgmlType type() { return GgmlType.BF16; }

    @Override public float getFloat(long i) { return Float.intBitsToFloat(data.getAtIndex(LE, i) << 16); }


    @Override
    public float dot(long offset, float[] x, int xOff, int n) {
        FloatVector acc = FloatVector.zero(F), acc2 = acc; // two chains: one FMA per 8 weights is latency-bound
        int i = 0, touched = 0;
        for (; i + 16 <= n; i += 16) {
            if ((i & 31) == 0) touched += touch(2 * (offset + i)); // see FloatTensor.AHEAD
            IntVector h = (IntVector) ShortVector.fromMemorySegment(ShortVector.SPECIES_128, data, 2 * (offset + i), ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.S2I, IntVector.SPECIES_256, 0);
            IntVector g = (IntVector) ShortVector.fromMemorySegment(ShortVector.SPECIES_128, data, 2 * (offset + i + 8), ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.S2I, IntVector.SPECIES_256, 0);
            acc = h.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(F, x, xOff + i), acc);
            acc2 = g.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(F, x, xOff + i + 8), acc2);
        }
        for (; i + 8 <= n; i += 8) {
            IntVector h = (IntVector) ShortVector.fromMemorySegment(ShortVector.SPECIES_128, data, 2 * (offset + i), ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.S2I, IntVector.SPECIES_256, 0);
            acc = h.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(F, x, xOff + i), acc);
        }
        keep(touched);
        float s = Lanes.sum(acc.add(acc2));
        for (; i < n; i++) s += getFloat(offset + i) * x[xOff + i];
        return s;
    }

    @Override
    public void copyTo(long offset, float[] out, int outOff, int n) {
        int i = 0;
        for (; i + 8 <= n; i += 8) {
            IntVector h = (IntVector) ShortVector.fromMemorySegment(ShortVector.SPECIES_128, data, 2 * (offset + i), ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.S2I, IntVector.SPECIES_256, 0);
            h.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoArray(out, outOff + i);
        }
        for (; i < n; i++) out[outOff + i] = getFloat(offset + i);
    }
}
