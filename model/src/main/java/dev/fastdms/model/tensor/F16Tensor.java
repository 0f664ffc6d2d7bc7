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

/** IEEE half floats. */
public final class F16Tensor extends FloatTensor {
    static final ValueLayout.OfShort LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    static final VectorSpecies<Short> S = ShortVector.SPECIES_128;
    static final float TWO_112 = 0x1p112f;

    F16Tensor(MemorySegment data, long size) { super(data, size); }

    @Override protected boolean hasFusedDot4() { return true; }

    @Override public GgmlType type() { return GgmlType.F16; }

    @Override public float getFloat(long i) { return Float.float16ToFloat(data.getAtIndex(LE, i)); }

    // Halves to floats without a lookup: the 15 magnitude bits shifted into a float's exponent/mantissa give the
    // value times 2^-112 (subnormals included), then the sign bit goes back in. Weights hold no inf/NaN.

    @Override
    public float dot(long offset, float[] x, int xOff, int n) {
        FloatVector acc = FloatVector.zero(F), acc2 = acc; // two chains: one FMA per 8 weights is latency-bound
        int i = 0, touched = 0;
        for (; i + 16 <= n; i += 16) {
            if ((i & 31) == 0) touched += touch(2 * (offset + i)); // see FloatTensor.AHEAD
            // written out here, not in a helper: a separately compiled helper boxes its vector result (slow path)
            IntVector h = (IntVector) ShortVector.fromMemorySegment(S, data, 2 * (offset + i), ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, IntVector.SPECIES_256, 0);
            IntVector g = (IntVector) ShortVector.fromMemorySegment(S, data, 2 * (offset + i + 8), ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, IntVector.SPECIES_256, 0);
            FloatVector mag = h.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(TWO_112);
            FloatVector mag2 = g.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(TWO_112);
            FloatVector w = mag.reinterpretAsInts().or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
            FloatVector w2 = mag2.reinterpretAsInts().or(g.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
            acc = w.fma(FloatVector.fromArray(F, x, xOff + i), acc);
            acc2 = w2.fma(FloatVector.fromArray(F, x, xOff + i + 8), acc2);
        }
        for (; i + 8 <= n; i += 8) {
            IntVector h = (IntVector) ShortVector.fromMemorySegment(S, data, 2 * (offset + i), ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, IntVector.SPECIES_256, 0);
            FloatVector mag = h.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(TWO_112);
            FloatVector w = mag.reinterpretAsInts().or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
            acc = w.fma(FloatVector.fromArray(F, x, xOff + i), acc);
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
            IntVector h = (IntVector) ShortVector.fromMemorySegment(S, data, 2 * (offset + i), ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, IntVector.SPECIES_256, 0);
            FloatVector mag = h.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(TWO_112);
            mag.reinterpretAsInts().or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats().intoArray(out, outOff + i);
        }
        for (; i < n; i++) out[outOff + i] = getFloat(offset + i);
    }

    @Override
    protected void dot4(long offset, float[] x, int x0, int x1, int x2, int x3, int n, float[] out, int o0, int o1, int o2, int o3) {
        if (n % 8 != 0) { super.dot4(offset, x, x0, x1, x2, x3, n, out, o0, o1, o2, o3); return; }
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        for (int i = 0; i < n; i += 8) {
            IntVector h = (IntVector) ShortVector.fromMemorySegment(S, data, 2 * (offset + i), ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, IntVector.SPECIES_256, 0);
            FloatVector mag = h.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(TWO_112);
            FloatVector w = mag.reinterpretAsInts().or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
            a0 = w.fma(FloatVector.fromArray(F, x, x0 + i), a0);
            a1 = w.fma(FloatVector.fromArray(F, x, x1 + i), a1);
            a2 = w.fma(FloatVector.fromArray(F, x, x2 + i), a2);
            a3 = w.fma(FloatVector.fromArray(F, x, x3 + i), a3);
        }
        out[o0] = Lanes.sum(a0);
        out[o1] = Lanes.sum(a1);
        out[o2] = Lanes.sum(a2);
        out[o3] = Lanes.sum(a3);
    }
}
