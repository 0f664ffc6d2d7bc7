package dev.fastdms.model.tensor;

import dev.fastdms.simd.Lanes;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** ggml Q8_0: blocks of 32 values = f16 scale d + 32 int8 q; value = d * q. */
public final class Q8_0Tensor extends FloatTensor {
    static final int BLOCK = 32, BYTES = 34;
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    static final VectorSpecies<Byte> B8 = ByteVector.SPECIES_64;
    /** The matvec's width: 512 bits where the CPU has them (see {@link Lanes#WIDE}), bytes to match its lanes. */
    static final boolean WIDE = Lanes.WIDE.length() == 16;
    static final VectorSpecies<Float> FW = FloatVector.SPECIES_512;
    static final VectorSpecies<Byte> BW = ByteVector.SPECIES_128;
    static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    Q8_0Tensor(MemorySegment data, long size) { super(data, size); }

    @Override protected boolean hasFusedDot4() { return true; }

    @Override public GgmlType type() { return GgmlType.Q8_0; }

    @Override
    public float getFloat(long i) {
        long b = i / BLOCK * BYTES;
        float d = Float.float16ToFloat(data.get(SHORT, b));
        return d * data.get(ValueLayout.JAVA_BYTE, b + 2 + i % BLOCK);
    }

    // The byte-to-float conversions are written out in each loop on purpose: a helper method returning a vector gets
    // compiled on its own by C2, its result is then boxed, and the Vector API falls back to its slow Java path.

    @Override
    public float dot(long offset, float[] x, int xOff, int n) {
        return WIDE ? dot512(offset, x, xOff, n) : dot256(offset, x, xOff, n);
    }

    // One method per width, each with constant species, so that C2 intrinsifies every vector operation. (A version
    // whose final sum went through a helper that branched on the width was not inlined: its accumulator was boxed
    // and the FMAs ran in the Vector API's slow Java path, 40% slower decode and a GC every 100 ms.)

    private float dot512(long offset, float[] x, int xOff, int n) {
        long blk = offset / BLOCK * BYTES;
        FloatVector acc = FloatVector.zero(FW);
        int touched = 0;
        for (int j = 0; j < n; j += BLOCK, blk += BYTES) {
            if ((j & 63) == 0) touched += touch(blk); // see FloatTensor.AHEAD
            FloatVector s = ((FloatVector) ByteVector.fromMemorySegment(BW, data, blk + 2, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, FW, 0)).mul(FloatVector.fromArray(FW, x, xOff + j));
            s = ((FloatVector) ByteVector.fromMemorySegment(BW, data, blk + 18, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, FW, 0)).fma(FloatVector.fromArray(FW, x, xOff + j + 16), s);
            acc = s.fma(FloatVector.broadcast(FW, Float.float16ToFloat(data.get(SHORT, blk))), acc);
        }
        keep(touched);
        return Lanes.sum512(acc);
    }

    private float dot256(long offset, float[] x, int xOff, int n) {
        long blk = offset / BLOCK * BYTES;
        FloatVector acc = FloatVector.zero(F);
        int touched = 0;
        for (int j = 0; j < n; j += BLOCK, blk += BYTES) {
            if ((j & 63) == 0) touched += touch(blk); // see FloatTensor.AHEAD
            // the block's dot product in float lanes, then scaled once: 4 FMAs + 1 per 32 weights
            FloatVector s = ((FloatVector) ByteVector.fromMemorySegment(B8, data, blk + 2, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F, 0)).mul(FloatVector.fromArray(F, x, xOff + j));
            s = ((FloatVector) ByteVector.fromMemorySegment(B8, data, blk + 10, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F, 0)).fma(FloatVector.fromArray(F, x, xOff + j + 8), s);
            s = ((FloatVector) ByteVector.fromMemorySegment(B8, data, blk + 18, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F, 0)).fma(FloatVector.fromArray(F, x, xOff + j + 16), s);
            s = ((FloatVector) ByteVector.fromMemorySegment(B8, data, blk + 26, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F, 0)).fma(FloatVector.fromArray(F, x, xOff + j + 24), s);
            acc = s.fma(FloatVector.broadcast(F, Float.float16ToFloat(data.get(SHORT, blk))), acc);
        }
        keep(touched);
        return Lanes.sum(acc);
    }

    @Override
    public void copyTo(long offset, float[] out, int outOff, int n) {
        if (offset % BLOCK != 0 || n % BLOCK != 0) { super.copyTo(offset, out, outOff, n); return; }
        long blk = offset / BLOCK * BYTES;
        if (WIDE) { // the outer-product GEMM dequantises every weight once per prefill chunk: 512 bits where possible
            for (int j = 0; j < n; j += BLOCK, blk += BYTES) {
                FloatVector d = FloatVector.broadcast(FW, Float.float16ToFloat(data.get(SHORT, blk)));
                ((FloatVector) ByteVector.fromMemorySegment(BW, data, blk + 2, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, FW, 0)).mul(d).intoArray(out, outOff + j);
                ((FloatVector) ByteVector.fromMemorySegment(BW, data, blk + 18, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, FW, 0)).mul(d).intoArray(out, outOff + j + 16);
            }
            return;
        }
        for (int j = 0; j < n; j += BLOCK, blk += BYTES) {
            FloatVector d = FloatVector.broadcast(F, Float.float16ToFloat(data.get(SHORT, blk)));
            for (int p = 0; p < BLOCK; p += 8) {
                ((FloatVector) ByteVector.fromMemorySegment(B8, data, blk + 2 + p, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F, 0)).mul(d).intoArray(out, outOff + j + p);
            }
        }
    }

    @Override
    protected void dot4(long offset, float[] x, int x0, int x1, int x2, int x3, int n, float[] out, int o0, int o1, int o2, int o3) {
        long blk = offset / BLOCK * BYTES;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        for (int j = 0; j < n; j += BLOCK, blk += BYTES) {
            FloatVector d = FloatVector.broadcast(F, Float.float16ToFloat(data.get(SHORT, blk)));
            for (int p = 0; p < BLOCK; p += 8) {
                // weights converted once, used by four rows of the batch
                FloatVector w = ((FloatVector) ByteVector.fromMemorySegment(B8, data, blk + 2 + p, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F, 0)).mul(d);
                a0 = w.fma(FloatVector.fromArray(F, x, x0 + j + p), a0);
                a1 = w.fma(FloatVector.fromArray(F, x, x1 + j + p), a1);
                a2 = w.fma(FloatVector.fromArray(F, x, x2 + j + p), a2);
                a3 = w.fma(FloatVector.fromArray(F, x, x3 + j + p), a3);
            }
        }
        out[o0] = Lanes.sum(a0);
        out[o1] = Lanes.sum(a1);
        out[o2] = Lanes.sum(a2);
        out[o3] = Lanes.sum(a3);
    }
}
