package dev.fastdms.model.tensor;

import dev.fastdms.simd.Lanes;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Q4_0 re-laid for decode, made at load from a {@link Q4_0Tensor} whose rows are a multiple of {@link #GROUP} long:
 * the kernel multiplies integers, as llama.cpp's {@code vec_dot_q4_0_q8_0} does. x is quantised once per product to
 * int8 per 32 values ({@link Int8Input}); each weight (a signed nibble) times its x value is a 16-bit product, four
 * groups of them are added on 16-bit lanes, adjacent lanes are added into 32-bit ones, and only then converted to
 * float and scaled, once per 128 weights instead of once per 16. That is fewer than half the float kernel's operations
 * (which converted every nibble to a float), and the Q4_0 matvec stops being compute-bound.
 *
 * <p>A group of 4 blocks (128 weights) takes 80 bytes: the 4 scales as floats, then 64 bytes of nibbles XOR 0x88
 * (so each nibble is its weight q - 8 in two's complement). Bytes [16, 48) and [48, 80) are each widened to 32
 * short lanes; byte 8k + j of the first holds elements j (low nibble) and j + 16 (high) of block k, of the second
 * elements 8 + j and 24 + j (j < 8). So 16-bit lane l, and 32-bit lane l / 2, belong to block l / 8 in every
 * vector, and one scale vector (each block's scale times x's, over its 4 lanes) scales them all. The 256-bit kernel
 * reads the same layout in two halves. Values are the same floats as Q4_0's; the dot product is exact in integers
 * and rounds only in the final float sums, x's int8 quantisation being its one loss.
 */
public final class Q4_0Int16 extends Int16Tensor {
    static final int BYTES = 80, NIBBLES = 16;

    private Q4_0Int16(MemorySegment data, long size) { super(data, size); }

    static long byteSize(long elements) { return elements / GROUP * BYTES; }

    /** Whether rows of {@code cols} weights can be re-laid (whole groups). */
    static boolean fits(int cols) { return cols % GROUP == 0; }

    /** Q4_0 blocks written in this layout (see {@link DecodeLayout}). */
    static final BlockLayout LAYOUT = new BlockLayout() {
        @Override public long bytes(long elements) { return byteSize(elements); }

        @Override
        public void copy(FloatTensor src, long from, long n, MemorySegment dst, long at) {
            MemorySegment m = src.segment();
            long s = from / Q4_0Tensor.BLOCK * Q4_0Tensor.BYTES;
            for (long g = 0; g < n / GROUP; g++, at += BYTES) {
                for (int k = 0; k < 4; k++, s += Q4_0Tensor.BYTES) {
                    dst.set(F32Tensor.LE, at + 4L * k, Float.float16ToFloat(m.get(Q8_0Tensor.SHORT, s)));
                    dst.set(Q4_KTensor.LONG_LE, at + NIBBLES + 8L * k, m.get(Q4_KTensor.LONG_LE, s + 2) ^ 0x8888888888888888L);
                    dst.set(Q4_KTensor.LONG_LE, at + NIBBLES + 32 + 8L * k, m.get(Q4_KTensor.LONG_LE, s + 10) ^ 0x8888888888888888L);
                }
            }
        }

        @Override public FloatTensor wrap(MemorySegment seg, long size) { return new Q4_0Int16(seg, size); }
    };

    @Override public GgmlType type() { return GgmlType.Q4_0; }

    @Override protected long storedBytes(long elements) { return byteSize(elements); }

    @Override
    public float getFloat(long i) {
        long o = i / GROUP * BYTES;
        int e = (int) (i % GROUP), k = e / 32, j = e % 32, half = j / 8 % 2; // half: elements 8..15 and 24..31
        int b = data.get(ValueLayout.JAVA_BYTE, o + NIBBLES + 32L * half + 8L * k + j % 8);
        int q = j < 16 ? (byte) (b << 4) >> 4 : b >> 4; // signed nibbles
        return data.get(F32Tensor.LE, o + 4L * k) * q;
    }

    /** Each block's scale over its 4 lanes; at 256 bits, for the first or second half of a group. */
    private static final VectorShuffle<Float> SPREAD = VectorShuffle.fromOp(FW, i -> i / 4),
            SPREAD0 = VectorShuffle.fromOp(F, i -> i / 4), SPREAD1 = VectorShuffle.fromOp(F, i -> 2 + i / 4);

    /**
     * One group per step: the low nibbles by a shift up and an arithmetic shift down, the high ones by an arithmetic
     * shift of the sign-extended byte; 16-bit products (|q·x| ≤ 8·127, four of them fit) added across the group, then
     * each pair of lanes added as one 32-bit lane by shifts, converted, and scaled by one FMA.
     */
    @Override
    float dot512(long offset, Int8Input in, int from, int n) {
        long o = offset / GROUP * BYTES;
        short[] xq = in.values;
        float[] xs = in.laneScales;
        FloatVector acc = FloatVector.zero(FW);
        for (int e = from; e < from + n; e += GROUP, o += BYTES) {
            ShortVector a = (ShortVector) ByteVector.fromMemorySegment(BW, data, o + NIBBLES, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2S, SW, 0);
            ShortVector b = (ShortVector) ByteVector.fromMemorySegment(BW, data, o + NIBBLES + 32, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2S, SW, 0);
            ShortVector p = a.lanewise(VectorOperators.LSHL, 12).lanewise(VectorOperators.ASHR, 12).mul(ShortVector.fromArray(SW, xq, e))
                    .add(a.lanewise(VectorOperators.ASHR, 4).mul(ShortVector.fromArray(SW, xq, e + 32)))
                    .add(b.lanewise(VectorOperators.LSHL, 12).lanewise(VectorOperators.ASHR, 12).mul(ShortVector.fromArray(SW, xq, e + 64)))
                    .add(b.lanewise(VectorOperators.ASHR, 4).mul(ShortVector.fromArray(SW, xq, e + 96)));
            IntVector w = p.reinterpretAsInts();
            w = w.add(w.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16); // lane pairs' sum, exact
            FloatVector scale = FloatVector.fromMemorySegment(FW, data, o, ByteOrder.LITTLE_ENDIAN).rearrange(SPREAD)
                    .mul(FloatVector.fromArray(FW, xs, e / 8));
            acc = ((FloatVector) w.convert(VectorOperators.I2F, 0)).fma(scale, acc);
        }
        return Lanes.sum512(acc);
    }

    /** {@link #dot512} on 256-bit vectors: each group as two halves of 16 bytes (blocks 0-1, then 2-3). */
    @Override
    float dot256(long offset, Int8Input in, int from, int n) {
        long o = offset / GROUP * BYTES;
        short[] xq = in.values;
        float[] xs = in.laneScales;
        FloatVector acc = FloatVector.zero(F), acc1 = acc;
        for (int e = from; e < from + n; e += GROUP, o += BYTES) {
            FloatVector scales = FloatVector.fromMemorySegment(F, data, o, ByteOrder.LITTLE_ENDIAN);
            for (int h = 0; h < 2; h++) {
                int xo = e + 16 * h;
                ShortVector a = (ShortVector) ByteVector.fromMemorySegment(B, data, o + NIBBLES + 16 * h, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2S, S, 0);
                ShortVector b = (ShortVector) ByteVector.fromMemorySegment(B, data, o + NIBBLES + 32 + 16 * h, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2S, S, 0);
                ShortVector p = a.lanewise(VectorOperators.LSHL, 12).lanewise(VectorOperators.ASHR, 12).mul(ShortVector.fromArray(S, xq, xo))
                        .add(a.lanewise(VectorOperators.ASHR, 4).mul(ShortVector.fromArray(S, xq, xo + 32)))
                        .add(b.lanewise(VectorOperators.LSHL, 12).lanewise(VectorOperators.ASHR, 12).mul(ShortVector.fromArray(S, xq, xo + 64)))
                        .add(b.lanewise(VectorOperators.ASHR, 4).mul(ShortVector.fromArray(S, xq, xo + 96)));
                IntVector w = p.reinterpretAsInts();
                w = w.add(w.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
                FloatVector scale = scales.rearrange(h == 0 ? SPREAD0 : SPREAD1).mul(FloatVector.fromArray(F, xs, e / 8 + 8 * h));
                FloatVector next = ((FloatVector) w.convert(VectorOperators.I2F, 0)).fma(scale, h == 0 ? acc : acc1);
                if (h == 0) acc = next; else acc1 = next;
            }
        }
        return Lanes.sum(acc.add(acc1));
    }
}
