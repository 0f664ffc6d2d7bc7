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
 * Q4_K re-laid for decode, made at load from a {@link Q4_KTensor}, for integer products as {@link Q4_0Int16}'s: each
 * super-block of 256 becomes 192 bytes: per group of 4 sub-blocks (128 weights) their scales {@code d * scale} and
 * negated mins {@code -dmin * min} as floats (decoding the f16 and packed 6-bit fields cost the stored kernel a
 * quarter of its work), 32 bytes per group; then the two groups' 64 bytes of nibbles, each in {@link Q4_0Int16}'s
 * order (byte 8k + j of the first 32: elements j and j + 16 of sub-block k, of the second 32: elements 8 + j and
 * 24 + j). The nibbles stay unsigned (0..15). The kernel sums {@code scale * q·x} over int8-rounded x
 * ({@link Int8Input}) and {@code -min * Σ x} over x's unrounded block sums in the same loop (a pass of its own cost a
 * fifth of the time: one more reduction per row). A third more bytes than Q4_K (0.75 per weight against 0.5625).
 * Super-blocks stay 64-byte aligned (3 cache lines) in a page-aligned copy. Values are the same floats as Q4_K's.
 */
public final class Q4_KInt16 extends Int16Tensor {
    static final int BLOCK = 256, BYTES = 192, NIBBLES = 64;

    private Q4_KInt16(MemorySegment data, long size) { super(data, size); }

    /** Bytes of {@code elements} weights in this layout. */
    static long byteSize(long elements) { return elements / BLOCK * BYTES; }

    private static final long LOW4 = 0x0F0F0F0F0F0F0F0FL;

    /** Q4_K blocks written in this layout (see {@link DecodeLayout}). */
    static final BlockLayout LAYOUT = new BlockLayout() {
        @Override public long bytes(long elements) { return byteSize(elements); }

        @Override
        public void copy(FloatTensor src, long from, long n, MemorySegment dst, long at) {
            MemorySegment m = src.segment();
            long s = from / BLOCK * Q4_KTensor.BYTES;
            for (long b = 0; b < n / BLOCK; b++, s += Q4_KTensor.BYTES, at += BYTES) {
                float d = Float.float16ToFloat(m.get(Q8_0Tensor.SHORT, s)), dmin = Float.float16ToFloat(m.get(Q8_0Tensor.SHORT, s + 2));
                long lo = m.get(Q4_KTensor.LONG_LE, s + 4);
                int hi = m.get(Q4_KTensor.INT_LE, s + 12);
                long sc = Q4_KTensor.scales(lo, hi), mn = Q4_KTensor.mins(lo, hi);
                for (int j = 0; j < 8; j++) {
                    dst.set(F32Tensor.LE, header(at, j), d * Q4_KTensor.at(sc, j));
                    dst.set(F32Tensor.LE, header(at, j) + 16, -(dmin * Q4_KTensor.at(mn, j)));
                }
                // stored chunk c: byte l holds element l of sub-block 2c (low nibble) and of 2c+1 (high)
                for (int c = 0; c < 4; c++) {
                    long q = s + 16 + 32L * c;
                    long l0 = m.get(Q4_KTensor.LONG_LE, q), l1 = m.get(Q4_KTensor.LONG_LE, q + 8),
                            l2 = m.get(Q4_KTensor.LONG_LE, q + 16), l3 = m.get(Q4_KTensor.LONG_LE, q + 24);
                    for (int half = 0; half < 2; half++) { // sub-block 2c + half
                        int sub = 2 * c + half, shift = 4 * half;
                        long g = at + NIBBLES + 64L * (sub / 4) + 8L * (sub % 4);
                        dst.set(Q4_KTensor.LONG_LE, g, l0 >>> shift & LOW4 | (l2 >>> shift & LOW4) << 4);
                        dst.set(Q4_KTensor.LONG_LE, g + 32, l1 >>> shift & LOW4 | (l3 >>> shift & LOW4) << 4);
                    }
                }
            }
        }

        @Override public FloatTensor wrap(MemorySegment seg, long size) { return new Q4_KInt16(seg, size); }
    };

    /** Where sub-block j's scale is in the super-block at {@code blk} (its negated min 16 bytes later). */
    private static long header(long blk, int j) { return blk + 32L * (j / 4) + 4L * (j % 4); }

    @Override public GgmlType type() { return GgmlType.Q4_K; }

    @Override protected long storedBytes(long elements) { return byteSize(elements); }

    @Override
    public float getFloat(long i) {
        long b = i / BLOCK * BYTES;
        int k = (int) (i % BLOCK), sub = k / 32, j = k % 32;
        long g = b + NIBBLES + 64L * (sub / 4) + 8L * (sub % 4) + 32L * (j / 8 % 2) + j % 8;
        int q = data.get(ValueLayout.JAVA_BYTE, g) & 0xFF;
        q = j < 16 ? q & 0xF : q >> 4;
        return data.get(F32Tensor.LE, header(b, sub)) * q + data.get(F32Tensor.LE, header(b, sub) + 16);
    }

    /** Constant operands as vectors: a scalar operand inlines a broadcast, and C2's inlining node budget is tight here. */
    private static final ShortVector NIBBLE = ShortVector.broadcast(SW, (short) 0x0F), NIBBLE256 = ShortVector.broadcast(S, (short) 0x0F);
    /** Each sub-block's scale, and its min (4 floats further), over its 4 lanes; at 256 bits, per half group. */
    private static final VectorShuffle<Float> SPREAD = VectorShuffle.fromOp(FW, i -> i / 4), SPREAD_MIN = VectorShuffle.fromOp(FW, i -> 4 + i / 4),
            SPREAD0 = VectorShuffle.fromOp(F, i -> i / 4), SPREAD1 = VectorShuffle.fromOp(F, i -> 2 + i / 4),
            SPREAD_MIN0 = VectorShuffle.fromOp(F, i -> 4 + i / 4), SPREAD_MIN1 = VectorShuffle.fromOp(F, i -> 6 + i / 4);

    /**
     * Σ scale · q·x - min · Σx: {@link Q4_0Int16}'s loop on unsigned nibbles (bytes zero-extended to 16 bits: the low
     * nibble by a mask, the high one by a shift; products up to 15·127, four of them fit), two groups per super-block;
     * the min term in a chain of its own.
     */
    @Override
    float dot512(long offset, Int8Input in, int from, int n) {
        long base = offset / BLOCK * BYTES;
        short[] xq = in.values;
        float[] xs = in.laneScales;
        float[] sums = in.laneSums;
        FloatVector acc = FloatVector.zero(FW), accMin = acc;
        for (int e = from, g = 0; e < from + n; e += GROUP, g++) {
            long blk = base + (long) (g >> 1) * BYTES, nib = blk + NIBBLES + 64L * (g & 1);
            ShortVector a = (ShortVector) ByteVector.fromMemorySegment(BW, data, nib, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.ZERO_EXTEND_B2S, SW, 0);
            ShortVector b = (ShortVector) ByteVector.fromMemorySegment(BW, data, nib + 32, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.ZERO_EXTEND_B2S, SW, 0);
            ShortVector p = a.and(NIBBLE).mul(ShortVector.fromArray(SW, xq, e))
                    .add(a.lanewise(VectorOperators.LSHR, 4).mul(ShortVector.fromArray(SW, xq, e + 32)))
                    .add(b.and(NIBBLE).mul(ShortVector.fromArray(SW, xq, e + 64)))
                    .add(b.lanewise(VectorOperators.LSHR, 4).mul(ShortVector.fromArray(SW, xq, e + 96)));
            IntVector w = p.reinterpretAsInts();
            w = w.add(w.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16); // lane pairs' sum, exact
            FloatVector head = FloatVector.fromMemorySegment(FW, data, blk + 32L * (g & 1), ByteOrder.LITTLE_ENDIAN);
            acc = ((FloatVector) w.convert(VectorOperators.I2F, 0)).fma(head.rearrange(SPREAD).mul(FloatVector.fromArray(FW, xs, e / 8)), acc);
            accMin = head.rearrange(SPREAD_MIN).fma(FloatVector.fromArray(FW, sums, e / 8), accMin);
        }
        return Lanes.sum512(acc.add(accMin));
    }

    /** {@link #dot512} on 256-bit vectors: each group as two halves of 16 bytes (sub-blocks 0-1, then 2-3). */
    @Override
    float dot256(long offset, Int8Input in, int from, int n) {
        long base = offset / BLOCK * BYTES;
        short[] xq = in.values;
        float[] xs = in.laneScales;
        float[] sums = in.laneSums;
        FloatVector acc = FloatVector.zero(F), acc1 = acc, accMin = acc;
        for (int e = from, g = 0; e < from + n; e += GROUP, g++) {
            long blk = base + (long) (g >> 1) * BYTES, nib = blk + NIBBLES + 64L * (g & 1);
            FloatVector head = FloatVector.fromMemorySegment(F, data, blk + 32L * (g & 1), ByteOrder.LITTLE_ENDIAN);
            for (int h = 0; h < 2; h++) {
                int xo = e + 16 * h;
                ShortVector a = (ShortVector) ByteVector.fromMemorySegment(B, data, nib + 16 * h, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.ZERO_EXTEND_B2S, S, 0);
                ShortVector b = (ShortVector) ByteVector.fromMemorySegment(B, data, nib + 32 + 16 * h, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.ZERO_EXTEND_B2S, S, 0);
                ShortVector p = a.and(NIBBLE256).mul(ShortVector.fromArray(S, xq, xo))
                        .add(a.lanewise(VectorOperators.LSHR, 4).mul(ShortVector.fromArray(S, xq, xo + 32)))
                        .add(b.and(NIBBLE256).mul(ShortVector.fromArray(S, xq, xo + 64)))
                        .add(b.lanewise(VectorOperators.LSHR, 4).mul(ShortVector.fromArray(S, xq, xo + 96)));
                IntVector w = p.reinterpretAsInts();
                w = w.add(w.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
                FloatVector scale = head.rearrange(h == 0 ? SPREAD0 : SPREAD1).mul(FloatVector.fromArray(F, xs, e / 8 + 8 * h));
                FloatVector next = ((FloatVector) w.convert(VectorOperators.I2F, 0)).fma(scale, h == 0 ? acc : acc1);
                if (h == 0) acc = next; else acc1 = next;
                accMin = head.rearrange(h == 0 ? SPREAD_MIN0 : SPREAD_MIN1).fma(FloatVector.fromArray(F, sums, e / 8 + 8 * h), accMin);
            }
        }
        return Lanes.sum(acc.add(acc1).add(accMin));
    }
}
