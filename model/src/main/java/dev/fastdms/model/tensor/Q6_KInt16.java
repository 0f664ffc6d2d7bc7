package dev.fastdms.model.tensor;

import dev.fastdms.simd.Lanes;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Q6_K re-laid for decode, made at load from a {@link Q6_KTensor}, for integer products as {@link Q4_0Int16}'s: each
 * super-block of 256 becomes 320 bytes, its 16 group scales {@code d * scale} as floats, then the 256 six-bit values
 * minus 32 as signed bytes (gathering each value's two bit fields from two arrays cost the stored kernel most of its
 * work), in two groups of 128 laid out for {@link Int8Input}'s lanes: vector v of a group (32 bytes) holds, at byte
 * 8k + j, element j, 16 + j, 8 + j or 24 + j (v = 0..3) of its block k of 32. Vectors 0 and 2 then hold the first
 * 16 elements of each block (one scale), 1 and 3 the last 16 (the next): two 16-bit sums per group, each scaled once.
 * Half again the bytes of Q6_K (1.25 per weight against 0.82). Super-blocks stay 64-byte aligned (5 cache lines) in a
 * page-aligned copy. Values are the same floats as Q6_K's.
 */
public final class Q6_KInt16 extends Int16Tensor {
    static final int BLOCK = 256, BYTES = 320, VALUES = 64;

    private Q6_KInt16(MemorySegment data, long size) { super(data, size); }

    static long byteSize(long elements) { return elements / BLOCK * BYTES; }

    private static final long LOW4 = 0x0F0F0F0F0F0F0F0FL, LOW2 = 0x0303030303030303L;
    /** Where in its block of 32 the 8 elements of each group vector's bytes 8k .. 8k + 7 start. */
    private static final int[] RUN = {0, 16, 8, 24};

    /** Q6_K blocks written in this layout (see {@link DecodeLayout}): 8 values at a time on the bytes of a long. */
    static final BlockLayout LAYOUT = new BlockLayout() {
        @Override public long bytes(long elements) { return byteSize(elements); }

        @Override
        public void copy(FloatTensor src, long from, long n, MemorySegment dst, long at) {
            MemorySegment m = src.segment();
            long[] vals = new long[32]; // one super-block's values minus 32, in element order, 8 per long
            long s = from / BLOCK * Q6_KTensor.BYTES;
            for (long b = 0; b < n / BLOCK; b++, s += Q6_KTensor.BYTES, at += BYTES) {
                float d = Float.float16ToFloat(m.get(Q8_0Tensor.SHORT, s + 208));
                for (int g = 0; g < 16; g++) dst.set(F32Tensor.LE, at + 4L * g, d * m.get(ValueLayout.JAVA_BYTE, s + 192 + g));
                for (int h = 0; h < 2; h++) {
                    long ql = s + 64L * h, qh = s + 128 + 32L * h;
                    for (int l = 0; l < 32; l += 8) { // see Q6_KTensor for which bits make value l, l+32, l+64, l+96
                        long a = m.get(Q4_KTensor.LONG_LE, ql + l), c = m.get(Q4_KTensor.LONG_LE, ql + l + 32), hb = m.get(Q4_KTensor.LONG_LE, qh + l);
                        int v = 16 * h + l / 8;
                        vals[v] = minus32(a & LOW4 | (hb & LOW2) << 4);
                        vals[v + 4] = minus32(c & LOW4 | (hb >>> 2 & LOW2) << 4);
                        vals[v + 8] = minus32(a >>> 4 & LOW4 | (hb >>> 4 & LOW2) << 4);
                        vals[v + 12] = minus32(c >>> 4 & LOW4 | (hb >>> 6 & LOW2) << 4);
                    }
                }
                for (int g = 0; g < 2; g++) for (int v = 0; v < 4; v++) for (int k = 0; k < 4; k++) {
                    dst.set(Q4_KTensor.LONG_LE, at + VALUES + 128L * g + 32L * v + 8L * k, vals[(128 * g + 32 * k + RUN[v]) / 8]);
                }
            }
        }

        @Override public FloatTensor wrap(MemorySegment seg, long size) { return new Q6_KInt16(seg, size); }
    };

    /** Each byte (0..63) minus 32, as a signed byte: + 0x60 cannot carry out of a byte, and flipping bit 7 takes 128 off. */
    static long minus32(long bytes) { return (bytes + 0x6060606060606060L) ^ 0x8080808080808080L; }

    @Override public GgmlType type() { return GgmlType.Q6_K; }

    @Override protected long storedBytes(long elements) { return byteSize(elements); }

    @Override
    public float getFloat(long i) {
        long b = i / BLOCK * BYTES;
        int e = (int) (i % BLOCK), t = e % 32, v = t < 8 ? 0 : t < 16 ? 2 : t < 24 ? 1 : 3;
        return data.get(F32Tensor.LE, b + 4L * (e / 16)) * data.get(ValueLayout.JAVA_BYTE, b + VALUES + 128L * (e / 128) + 32L * v + 8L * (e % 128 / 32) + t % 8);
    }

    /** A block's two scales (its first and last 16 elements) over its 4 lanes; at 256 bits, per half group. */
    private static final VectorShuffle<Float> FIRST = VectorShuffle.fromOp(FW, i -> 2 * (i / 4)), LAST = VectorShuffle.fromOp(FW, i -> 2 * (i / 4) + 1),
            FIRST0 = VectorShuffle.fromOp(F, i -> 2 * (i / 4)), LAST0 = VectorShuffle.fromOp(F, i -> 2 * (i / 4) + 1),
            FIRST1 = VectorShuffle.fromOp(F, i -> 4 + 2 * (i / 4)), LAST1 = VectorShuffle.fromOp(F, i -> 5 + 2 * (i / 4));

    /**
     * One group per step: the four vectors' bytes sign-extended to 16 bits and multiplied by x (|q·x| ≤ 32·127, two
     * of them fit), the first and last 16 elements of each block summed apart, each pair of lanes added into a 32-bit
     * lane by shifts, converted, and scaled by its block's two scales and x's.
     */
    @Override
    float dot512(long offset, Int8Input in, int from, int n) {
        long base = offset / BLOCK * BYTES;
        short[] xq = in.values;
        float[] xs = in.laneScales;
        FloatVector acc = FloatVector.zero(FW);
        for (int e = from, g = 0; e < from + n; e += GROUP, g++) {
            long blk = base + (long) (g >> 1) * BYTES, val = blk + VALUES + 128L * (g & 1);
            ShortVector a = ((ShortVector) ByteVector.fromMemorySegment(BW, data, val, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2S, SW, 0))
                    .mul(ShortVector.fromArray(SW, xq, e))
                    .add(((ShortVector) ByteVector.fromMemorySegment(BW, data, val + 64, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2S, SW, 0))
                            .mul(ShortVector.fromArray(SW, xq, e + 64)));
            ShortVector b = ((ShortVector) ByteVector.fromMemorySegment(BW, data, val + 32, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2S, SW, 0))
                    .mul(ShortVector.fromArray(SW, xq, e + 32))
                    .add(((ShortVector) ByteVector.fromMemorySegment(BW, data, val + 96, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2S, SW, 0))
                            .mul(ShortVector.fromArray(SW, xq, e + 96)));
            IntVector wa = a.reinterpretAsInts(), wb = b.reinterpretAsInts();
            wa = wa.add(wa.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16); // lane pairs' sums, exact
            wb = wb.add(wb.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            FloatVector scales = FloatVector.fromMemorySegment(FW, data, blk + 32L * (g & 1), ByteOrder.LITTLE_ENDIAN);
            FloatVector t = ((FloatVector) wa.convert(VectorOperators.I2F, 0)).mul(scales.rearrange(FIRST))
                    .add(((FloatVector) wb.convert(VectorOperators.I2F, 0)).mul(scales.rearrange(LAST)));
            acc = t.fma(FloatVector.fromArray(FW, xs, e / 8), acc);
        }
        return Lanes.sum512(acc);
    }

    /** {@link #dot512} on 256-bit vectors: each group as two halves of 16 bytes per vector (blocks 0-1, then 2-3). */
    @Override
    float dot256(long offset, Int8Input in, int from, int n) {
        long base = offset / BLOCK * BYTES;
        short[] xq = in.values;
        float[] xs = in.laneScales;
        FloatVector acc = FloatVector.zero(F), acc1 = acc;
        for (int e = from, g = 0; e < from + n; e += GROUP, g++) {
            long blk = base + (long) (g >> 1) * BYTES, val = blk + VALUES + 128L * (g & 1);
            FloatVector scales = FloatVector.fromMemorySegment(F, data, blk + 32L * (g & 1), ByteOrder.LITTLE_ENDIAN);
            for (int h = 0; h < 2; h++) {
                int xo = e + 16 * h;
                long at = val + 16 * h;
                ShortVector a = ((ShortVector) ByteVector.fromMemorySegment(B, data, at, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2S, S, 0))
                        .mul(ShortVector.fromArray(S, xq, xo))
                        .add(((ShortVector) ByteVector.fromMemorySegment(B, data, at + 64, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2S, S, 0))
                                .mul(ShortVector.fromArray(S, xq, xo + 64)));
                ShortVector b = ((ShortVector) ByteVector.fromMemorySegment(B, data, at + 32, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2S, S, 0))
                        .mul(ShortVector.fromArray(S, xq, xo + 32))
                        .add(((ShortVector) ByteVector.fromMemorySegment(B, data, at + 96, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2S, S, 0))
                                .mul(ShortVector.fromArray(S, xq, xo + 96)));
                IntVector wa = a.reinterpretAsInts(), wb = b.reinterpretAsInts();
                wa = wa.add(wa.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
                wb = wb.add(wb.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
                FloatVector t = ((FloatVector) wa.convert(VectorOperators.I2F, 0)).mul(scales.rearrange(h == 0 ? FIRST0 : FIRST1))
                        .add(((FloatVector) wb.convert(VectorOperators.I2F, 0)).mul(scales.rearrange(h == 0 ? LAST0 : LAST1)));
                FloatVector next = t.fma(FloatVector.fromArray(F, xs, e / 8 + 8 * h), h == 0 ? acc : acc1);
                if (h == 0) acc = next; else acc1 = next;
            }
        }
        return Lanes.sum(acc.add(acc1));
    }
}
