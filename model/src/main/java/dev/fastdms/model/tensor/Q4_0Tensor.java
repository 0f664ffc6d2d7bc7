package dev.fastdms.model.tensor;

import dev.fastdms.simd.Lanes;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** ggml Q4_0: blocks of 32 = f16 scale d + 16 bytes; element j < 16 is the low nibble of byte j, j >= 16 the high nibble of byte j-16; value = d * (q - 8). */
public final class Q4_0Tensor extends FloatTensor {
    static final int BLOCK = 32, BYTES = 18;
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;

    Q4_0Tensor(MemorySegment data, long size) { super(data, size); }

    @Override public GgmlType type() { return GgmlType.Q4_0; }

    @Override
    public float getFloat(long i) {
        long b = i / BLOCK * BYTES;
        int j = (int) (i % BLOCK);
        float d = Float.float16ToFloat(data.get(Q8_0Tensor.SHORT, b));
        int q = data.get(ValueLayout.JAVA_BYTE, b + 2 + (j & 15)) & 0xFF;
        return d * ((j < 16 ? q & 0xF : q >>> 4) - 8);
    }

    static final VectorSpecies<Byte> B8 = ByteVector.SPECIES_64;
    static final VectorSpecies<Integer> I = IntVector.SPECIES_256;

    @Override
    public float dot(long offset, float[] x, int xOff, int n) {
        return Q8_0Tensor.WIDE ? dot512(offset, x, xOff, n) : dot256(offset, x, xOff, n);
    }

    static final VectorSpecies<Float> FW = FloatVector.SPECIES_512;
    static final VectorSpecies<Byte> BW = ByteVector.SPECIES_128;
    /** Constant operands as vectors: a scalar operand inlines a broadcast, and C2's inlining node budget is tight here. */
    private static final ByteVector NIBBLE = ByteVector.broadcast(BW, (byte) 0x0F), EIGHT = ByteVector.broadcast(BW, (byte) 8);

    /**
     * A block's 16 bytes are unpacked on byte lanes (the high nibbles by a shift on the same bits viewed as int lanes,
     * then masked, since x86 has no byte shift) and widened once to 16 float lanes per half. The two accumulators
     * swap every block, so consecutive blocks' FMAs do not wait on each other (one chain bounded the loop by its
     * latency); the loop body stays one block, small enough for C2 to inline every vector operation.
     */
    private float dot512(long offset, float[] x, int xOff, int n) {
        long blk = offset / BLOCK * BYTES;
        FloatVector acc0 = FloatVector.zero(FW), acc1 = acc0;
        int touched = 0;
        for (int j = 0; j < n; j += BLOCK, blk += BYTES) {
            if ((j & 127) == 0) touched += touch(blk); // 72 bytes per 128 weights; see FloatTensor.AHEAD
            ByteVector q = ByteVector.fromMemorySegment(BW, data, blk + 2, ByteOrder.LITTLE_ENDIAN);
            FloatVector s = ((FloatVector) q.and(NIBBLE).sub(EIGHT).convertShape(VectorOperators.B2F, FW, 0)).mul(FloatVector.fromArray(FW, x, xOff + j));
            s = ((FloatVector) q.reinterpretAsInts().lanewise(VectorOperators.LSHR, 4).reinterpretAsBytes().and(NIBBLE).sub(EIGHT)
                    .convertShape(VectorOperators.B2F, FW, 0)).fma(FloatVector.fromArray(FW, x, xOff + j + 16), s);
            FloatVector next = s.fma(FloatVector.broadcast(FW, Float.float16ToFloat(data.get(Q8_0Tensor.SHORT, blk))), acc1);
            acc1 = acc0;
            acc0 = next;
        }
        keep(touched);
        return Lanes.sum512(acc0.add(acc1));
    }

    private float dot256(long offset, float[] x, int xOff, int n) {
        long blk = offset / BLOCK * BYTES;
        FloatVector acc = FloatVector.zero(F);
        int touched = 0;
        for (int j = 0; j < n; j += BLOCK, blk += BYTES) {
            if ((j & 127) == 0) touched += touch(blk); // 72 bytes per 128 weights; see FloatTensor.AHEAD
            // 8 bytes at a time: low nibbles are elements k..k+7, high nibbles k+16..k+23 (conversion written inline:
            // a helper returning vectors would be compiled apart and box them)
            // nibbles split on 32-bit lanes (x86 has no byte-lane shifts)
            IntVector q0 = ((IntVector) ByteVector.fromMemorySegment(B8, data, blk + 2, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I, 0)).and(0xFF);
            IntVector q1 = ((IntVector) ByteVector.fromMemorySegment(B8, data, blk + 10, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I, 0)).and(0xFF);
            FloatVector s = ((FloatVector) q0.and(0x0F).sub(8).convert(VectorOperators.I2F, 0)).mul(FloatVector.fromArray(F, x, xOff + j));
            s = ((FloatVector) q1.and(0x0F).sub(8).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, x, xOff + j + 8), s);
            s = ((FloatVector) q0.lanewise(VectorOperators.LSHR, 4).sub(8).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, x, xOff + j + 16), s);
            s = ((FloatVector) q1.lanewise(VectorOperators.LSHR, 4).sub(8).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, x, xOff + j + 24), s);
            acc = s.fma(FloatVector.broadcast(F, Float.float16ToFloat(data.get(Q8_0Tensor.SHORT, blk))), acc);
        }
        keep(touched);
        return Lanes.sum(acc);
    }

    @Override
    public void copyTo(long offset, float[] out, int outOff, int n) {
        if (offset % BLOCK != 0 || n % BLOCK != 0) { super.copyTo(offset, out, outOff, n); return; }
        long blk = offset / BLOCK * BYTES;
        for (int j = 0; j < n; j += BLOCK, blk += BYTES) {
            FloatVector d = FloatVector.broadcast(F, Float.float16ToFloat(data.get(Q8_0Tensor.SHORT, blk)));
            IntVector q0 = ((IntVector) ByteVector.fromMemorySegment(B8, data, blk + 2, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I, 0)).and(0xFF);
            IntVector q1 = ((IntVector) ByteVector.fromMemorySegment(B8, data, blk + 10, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I, 0)).and(0xFF);
            int o = outOff + j;
            ((FloatVector) q0.and(0x0F).sub(8).convert(VectorOperators.I2F, 0)).mul(d).intoArray(out, o);
            ((FloatVector) q1.and(0x0F).sub(8).convert(VectorOperators.I2F, 0)).mul(d).intoArray(out, o + 8);
            ((FloatVector) q0.lanewise(VectorOperators.LSHR, 4).sub(8).convert(VectorOperators.I2F, 0)).mul(d).intoArray(out, o + 16);
            ((FloatVector) q1.lanewise(VectorOperators.LSHR, 4).sub(8).convert(VectorOperators.I2F, 0)).mul(d).intoArray(out, o + 24);
        }
    }
}
