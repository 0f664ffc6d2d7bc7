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

/**
 * Q4_K re-laid for decode, made at load from a {@link Q4_KTensor}: each super-block of 256 becomes 192 bytes, its 8
 * sub-block scales {@code d * scale} and 8 mins {@code dmin * min} as floats, then the same 128 bytes of nibbles.
 * Decoding a super-block's f16 and packed 6-bit fields cost the Q4_K kernel a quarter of its work, which kept it
 * compute-bound well below the memory's speed; with the scales ready the kernel does per value what the Q4_0
 * kernel does. The price is a third more bytes (0.75 per weight against 0.5625), which the matvec can stream.
 * Super-blocks stay 64-byte aligned (3 cache lines) in a page-aligned copy. Values are the same floats as Q4_K's.
 */
public final class Q4_KFloatScales extends FloatTensor {
    static final int BLOCK = 256, BYTES = 192, NIBBLES = 64;

    private Q4_KFloatScales(MemorySegment data, long size) { super(data, size); }

    /** Bytes of {@code elements} weights in this layout. */
    static long byteSize(long elements) { return elements / BLOCK * BYTES; }

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
                    dst.set(F32Tensor.LE, at + 4L * j, d * Q4_KTensor.at(sc, j));
                    dst.set(F32Tensor.LE, at + 32 + 4L * j, dmin * Q4_KTensor.at(mn, j));
                }
                for (int k = 0; k < 128; k += 8) dst.set(Q4_KTensor.LONG_LE, at + NIBBLES + k, m.get(Q4_KTensor.LONG_LE, s + 16 + k));
            }
        }

        @Override public FloatTensor wrap(MemorySegment seg, long size) { return new Q4_KFloatScales(seg, size); }
    };

    @Override public GgmlType type() { return GgmlType.Q4_K; }

    @Override protected long storedBytes(long elements) { return byteSize(elements); }

    @Override
    public float getFloat(long i) {
        long b = i / BLOCK * BYTES;
        int k = (int) (i % BLOCK), chunk = k / 64, w = k % 64, sub = 2 * chunk + w / 32;
        int q = data.get(ValueLayout.JAVA_BYTE, b + NIBBLES + chunk * 32 + w % 32) & 0xFF;
        q = w < 32 ? q & 0xF : q >> 4;
        return data.get(F32Tensor.LE, b + 4L * sub) * q - data.get(F32Tensor.LE, b + 32 + 4L * sub);
    }

    static final VectorSpecies<Float> F = FloatVector.SPECIES_256, FW = FloatVector.SPECIES_512;
    static final VectorSpecies<Byte> B8 = ByteVector.SPECIES_64, BW = ByteVector.SPECIES_128;
    static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    /** Constant operands as vectors: a scalar operand inlines a broadcast, and C2's inlining node budget is tight here. */
    private static final ByteVector NIBBLE = ByteVector.broadcast(BW, (byte) 0x0F);

    @Override
    public float dot(long offset, float[] x, int xOff, int n) {
        if (!Q8_0Tensor.WIDE) return dot256(offset, x, xOff, n);
        float[] xp = Q4_KTensor.prepare(x, xOff, n);
        return dot512(offset, xp, 0, n) - minTerm(offset, xp, n, n);
    }

    /** The input in the order the kernel reads it, as {@link Q4_KTensor}'s (the nibbles are laid out alike). */
    @Override
    protected Object prepareInput(float[] x, int xOff, int n) { return Q8_0Tensor.WIDE ? Q4_KTensor.prepare(x, xOff, n) : null; }

    @Override
    protected float rowDot(long offset, float[] x, int xOff, Object prepared, int cols, int from, int n) {
        if (!(prepared instanceof float[] xp)) return dot(offset, x, xOff + from, n);
        return dot512(offset, xp, from, n) - minTerm(offset, xp, cols + from / 32, n);
    }

    /**
     * Σ scale * q·x over the row: {@link Q4_KTensor}'s loop (16 bytes on byte lanes, low and high nibbles widened
     * once each to 16 float lanes, chains swapped each step) with each sub-block's scale one float load.
     */
    private float dot512(long offset, float[] xp, int xpOff, int n) {
        long base = offset / BLOCK * BYTES;
        FloatVector acc = FloatVector.zero(FW), acc2 = acc, acc3 = acc, acc4 = acc;
        int touched = 0;
        for (int g = 0; g < n / 32; g += 2) { // two 16-byte groups per step: the same two sub-blocks
            long blk = base + (long) (g >> 3) * BYTES;
            int h = g & 7;
            if (h == 0) touched += touch(blk) + touch(blk + 64) + touch(blk + 128); // see FloatTensor.AHEAD
            ByteVector q = ByteVector.fromMemorySegment(BW, data, blk + NIBBLES + 16 * h, ByteOrder.LITTLE_ENDIAN);
            ByteVector r = ByteVector.fromMemorySegment(BW, data, blk + NIBBLES + 16 + 16 * h, ByteOrder.LITTLE_ENDIAN);
            FloatVector pLo = ((FloatVector) q.and(NIBBLE).convertShape(VectorOperators.B2F, FW, 0)).mul(FloatVector.fromArray(FW, xp, xpOff + 32 * g));
            pLo = ((FloatVector) r.and(NIBBLE).convertShape(VectorOperators.B2F, FW, 0)).fma(FloatVector.fromArray(FW, xp, xpOff + 32 * g + 32), pLo);
            FloatVector pHi = ((FloatVector) q.reinterpretAsInts().lanewise(VectorOperators.LSHR, 4).reinterpretAsBytes().and(NIBBLE)
                    .convertShape(VectorOperators.B2F, FW, 0)).mul(FloatVector.fromArray(FW, xp, xpOff + 32 * g + 16));
            pHi = ((FloatVector) r.reinterpretAsInts().lanewise(VectorOperators.LSHR, 4).reinterpretAsBytes().and(NIBBLE)
                    .convertShape(VectorOperators.B2F, FW, 0)).fma(FloatVector.fromArray(FW, xp, xpOff + 32 * g + 48), pHi);
            FloatVector nextLo = pLo.fma(FloatVector.broadcast(FW, data.get(F32Tensor.LE, blk + 4L * h)), acc2);
            FloatVector nextHi = pHi.fma(FloatVector.broadcast(FW, data.get(F32Tensor.LE, blk + 4L * h + 4)), acc4);
            acc2 = acc;
            acc = nextLo;
            acc4 = acc3;
            acc3 = nextHi;
        }
        keep(touched);
        return Lanes.sum512(acc.add(acc2).add(acc3.add(acc4)));
    }

    /** Σ over the row's sub-blocks of min * Σ x: 8 mins times the prepared 8 sub-block sums per super-block. */
    private float minTerm(long offset, float[] xp, int sumsOff, int n) {
        long blk = offset / BLOCK * BYTES;
        FloatVector acc = FloatVector.zero(F);
        for (int s = sumsOff; s < sumsOff + n / 32; s += 8, blk += BYTES) {
            acc = FloatVector.fromMemorySegment(F, data, blk + 32, ByteOrder.LITTLE_ENDIAN).fma(FloatVector.fromArray(F, xp, s), acc);
        }
        return Lanes.sum(acc);
    }

    private float dot256(long offset, float[] x, int xOff, int n) {
        long blk = offset / BLOCK * BYTES;
        FloatVector acc = FloatVector.zero(F), accMin = acc;
        int touched = 0;
        for (int j = 0; j < n; j += BLOCK, blk += BYTES) {
            touched += touch(blk) + touch(blk + 64) + touch(blk + 128); // see FloatTensor.AHEAD
            for (int c = 0; c < 4; c++) {
                FloatVector qxLo = FloatVector.zero(F), qxHi = qxLo, xLo = qxLo, xHi = qxLo;
                int xo = xOff + j + c * 64;
                for (int p = 0; p < 32; p += 8) {
                    IntVector q = ((IntVector) ByteVector.fromMemorySegment(B8, data, blk + NIBBLES + c * 32 + p, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.B2I, I, 0)).and(0xFF);
                    FloatVector xl = FloatVector.fromArray(F, x, xo + p), xh = FloatVector.fromArray(F, x, xo + 32 + p);
                    qxLo = ((FloatVector) q.and(0x0F).convert(VectorOperators.I2F, 0)).fma(xl, qxLo);
                    qxHi = ((FloatVector) q.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).fma(xh, qxHi);
                    xLo = xLo.add(xl);
                    xHi = xHi.add(xh);
                }
                acc = qxLo.fma(FloatVector.broadcast(F, data.get(F32Tensor.LE, blk + 8L * c)), acc);
                acc = qxHi.fma(FloatVector.broadcast(F, data.get(F32Tensor.LE, blk + 8L * c + 4)), acc);
                accMin = xLo.fma(FloatVector.broadcast(F, data.get(F32Tensor.LE, blk + 32 + 8L * c)), accMin);
                accMin = xHi.fma(FloatVector.broadcast(F, data.get(F32Tensor.LE, blk + 36 + 8L * c)), accMin);
            }
        }
        keep(touched);
        return Lanes.sum(acc.sub(accMin));
    }

    @Override
    public void copyTo(long offset, float[] out, int outOff, int n) {
        if (offset % BLOCK != 0 || n % BLOCK != 0) { super.copyTo(offset, out, outOff, n); return; }
        long blk = offset / BLOCK * BYTES;
        for (int j = 0; j < n; j += BLOCK, blk += BYTES) {
            for (int c = 0; c < 4; c++) {
                FloatVector sLo = FloatVector.broadcast(F, data.get(F32Tensor.LE, blk + 8L * c));
                FloatVector mLo = FloatVector.broadcast(F, -data.get(F32Tensor.LE, blk + 32 + 8L * c));
                FloatVector sHi = FloatVector.broadcast(F, data.get(F32Tensor.LE, blk + 8L * c + 4));
                FloatVector mHi = FloatVector.broadcast(F, -data.get(F32Tensor.LE, blk + 36 + 8L * c));
                int o = outOff + j + c * 64;
                for (int p = 0; p < 32; p += 8) {
                    IntVector q = ((IntVector) ByteVector.fromMemorySegment(B8, data, blk + NIBBLES + c * 32 + p, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.B2I, I, 0)).and(0xFF);
                    ((FloatVector) q.and(0x0F).convert(VectorOperators.I2F, 0)).fma(sLo, mLo).intoArray(out, o + p);
                    ((FloatVector) q.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).fma(sHi, mHi).intoArray(out, o + 32 + p);
                }
            }
        }
    }
}
