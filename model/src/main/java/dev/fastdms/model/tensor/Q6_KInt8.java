package dev.fastdms.model.tensor;

import dev.fastdms.simd.Lanes;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Q6_K re-laid for decode, made at load from a {@link Q6_KTensor}: each super-block of 256 becomes 320 bytes, its 16
 * group scales {@code d * scale} as floats, then the 256 six-bit values minus 32 as signed bytes in element order.
 * Gathering each value's two bit fields from two arrays cost the Q6_K kernel most of its work; from whole bytes the
 * kernel is the Q8_0 kernel with a scale per 16 values. The price is half again the bytes (1.25 per weight against
 * 0.82). Super-blocks stay 64-byte aligned (5 cache lines) in a page-aligned copy. Values are the same floats as
 * Q6_K's.
 */
public final class Q6_KInt8 extends FloatTensor {
    static final int BLOCK = 256, BYTES = 320, VALUES = 64;

    private Q6_KInt8(MemorySegment data, long size) { super(data, size); }

    static long byteSize(long elements) { return elements / BLOCK * BYTES; }

    private static final long LOW4 = 0x0F0F0F0F0F0F0F0FL, LOW2 = 0x0303030303030303L;

    /** Q6_K blocks written in this layout (see {@link DecodeLayout}): 8 values at a time on the bytes of a long. */
    static final BlockLayout LAYOUT = new BlockLayout() {
        @Override public long bytes(long elements) { return byteSize(elements); }

        @Override
        public void copy(FloatTensor src, long from, long n, MemorySegment dst, long at) {
            MemorySegment m = src.segment();
            long s = from / BLOCK * Q6_KTensor.BYTES;
            for (long b = 0; b < n / BLOCK; b++, s += Q6_KTensor.BYTES, at += BYTES) {
                float d = Float.float16ToFloat(m.get(Q8_0Tensor.SHORT, s + 208));
                for (int g = 0; g < 16; g++) dst.set(F32Tensor.LE, at + 4L * g, d * m.get(ValueLayout.JAVA_BYTE, s + 192 + g));
                for (int h = 0; h < 2; h++) {
                    long ql = s + 64L * h, qh = s + 128 + 32L * h, v = at + VALUES + 128L * h;
                    for (int l = 0; l < 32; l += 8) { // see Q6_KTensor for which bits make value l, l+32, l+64, l+96
                        long a = m.get(Q4_KTensor.LONG_LE, ql + l), c = m.get(Q4_KTensor.LONG_LE, ql + l + 32), hb = m.get(Q4_KTensor.LONG_LE, qh + l);
                        dst.set(Q4_KTensor.LONG_LE, v + l, minus32(a & LOW4 | (hb & LOW2) << 4));
                        dst.set(Q4_KTensor.LONG_LE, v + l + 32, minus32(c & LOW4 | (hb >>> 2 & LOW2) << 4));
                        dst.set(Q4_KTensor.LONG_LE, v + l + 64, minus32(a >>> 4 & LOW4 | (hb >>> 4 & LOW2) << 4));
                        dst.set(Q4_KTensor.LONG_LE, v + l + 96, minus32(c >>> 4 & LOW4 | (hb >>> 6 & LOW2) << 4));
                    }
                }
            }
        }

        @Override public FloatTensor wrap(MemorySegment seg, long size) { return new Q6_KInt8(seg, size); }
    };

    /** Each byte (0..63) minus 32, as a signed byte: + 0x60 cannot carry out of a byte, and flipping bit 7 takes 128 off. */
    static long minus32(long bytes) { return (bytes + 0x6060606060606060L) ^ 0x8080808080808080L; }

    @Override public GgmlType type() { return GgmlType.Q6_K; }

    @Override protected long storedBytes(long elements) { return byteSize(elements); }

    @Override
    public float getFloat(long i) {
        long b = i / BLOCK * BYTES;
        int k = (int) (i % BLOCK);
        return data.get(F32Tensor.LE, b + 4L * (k / 16)) * data.get(ValueLayout.JAVA_BYTE, b + VALUES + k);
    }

    static final VectorSpecies<Float> F = FloatVector.SPECIES_256, FW = FloatVector.SPECIES_512;
    static final VectorSpecies<Byte> B8 = ByteVector.SPECIES_64, BW = ByteVector.SPECIES_128;

    @Override
    public float dot(long offset, float[] x, int xOff, int n) {
        return Q8_0Tensor.WIDE ? dot512(offset, x, xOff, n) : dot256(offset, x, xOff, n);
    }

    /** Two groups of 16 per step, each widened once to 16 float lanes and scaled once; chains swapped each step. */
    private float dot512(long offset, float[] x, int xOff, int n) {
        long base = offset / BLOCK * BYTES;
        FloatVector acc = FloatVector.zero(FW), acc2 = acc, acc3 = acc, acc4 = acc;
        int touched = 0;
        for (int j = 0; j < n; j += 32) {
            long blk = base + (long) (j >> 8) * BYTES;
            int k = j & 255;
            if ((k & 63) == 0) touched += touch(blk + VALUES + k); // see FloatTensor.AHEAD
            FloatVector p = ((FloatVector) ByteVector.fromMemorySegment(BW, data, blk + VALUES + k, ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.B2F, FW, 0)).mul(FloatVector.fromArray(FW, x, xOff + j));
            FloatVector u = ((FloatVector) ByteVector.fromMemorySegment(BW, data, blk + VALUES + k + 16, ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.B2F, FW, 0)).mul(FloatVector.fromArray(FW, x, xOff + j + 16));
            FloatVector next = p.fma(FloatVector.broadcast(FW, data.get(F32Tensor.LE, blk + (k >> 2))), acc2);
            FloatVector next2 = u.fma(FloatVector.broadcast(FW, data.get(F32Tensor.LE, blk + (k >> 2) + 4)), acc4);
            acc2 = acc;
            acc = next;
            acc4 = acc3;
            acc3 = next2;
        }
        keep(touched);
        return Lanes.sum512(acc.add(acc2).add(acc3.add(acc4)));
    }

    private float dot256(long offset, float[] x, int xOff, int n) {
        long base = offset / BLOCK * BYTES;
        FloatVector acc = FloatVector.zero(F), acc2 = acc;
        int touched = 0;
        for (int j = 0; j < n; j += 16) {
            long blk = base + (long) (j >> 8) * BYTES;
            int k = j & 255;
            if ((k & 63) == 0) touched += touch(blk + VALUES + k); // see FloatTensor.AHEAD
            FloatVector p = ((FloatVector) ByteVector.fromMemorySegment(B8, data, blk + VALUES + k, ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.B2F, F, 0)).mul(FloatVector.fromArray(F, x, xOff + j));
            p = ((FloatVector) ByteVector.fromMemorySegment(B8, data, blk + VALUES + k + 8, ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.B2F, F, 0)).fma(FloatVector.fromArray(F, x, xOff + j + 8), p);
            FloatVector next = p.fma(FloatVector.broadcast(F, data.get(F32Tensor.LE, blk + (k >> 2))), acc2);
            acc2 = acc;
            acc = next;
        }
        keep(touched);
        return Lanes.sum(acc.add(acc2));
    }

    @Override
    public void copyTo(long offset, float[] out, int outOff, int n) {
        if (offset % BLOCK != 0 || n % BLOCK != 0) { super.copyTo(offset, out, outOff, n); return; }
        long blk = offset / BLOCK * BYTES;
        for (int j = 0; j < n; j += BLOCK, blk += BYTES) {
            for (int g = 0; g < 16; g++) {
                FloatVector s = FloatVector.broadcast(F, data.get(F32Tensor.LE, blk + 4L * g));
                for (int p = 0; p < 16; p += 8) {
                    ((FloatVector) ByteVector.fromMemorySegment(B8, data, blk + VALUES + 16L * g + p, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.B2F, F, 0)).mul(s).intoArray(out, outOff + j + 16 * g + p);
                }
            }
        }
    }
}
