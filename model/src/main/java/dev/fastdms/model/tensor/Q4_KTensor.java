package dev.fastdms.model.tensor;

import dev.fastdms.simd.Lanes;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * ggml Q4_K: super-blocks of 256 = f16 d, f16 dmin, 12 bytes of packed 6-bit (scale, min) pairs for 8 sub-blocks of
 * 32, then 128 bytes of nibbles. Chunk c (64 values) uses bytes [32c, 32c+32): low nibbles are sub-block 2c, high
 * nibbles sub-block 2c+1. value = d * scale * q - dmin * min.
 */
public final class Q4_KTensor extends FloatTensor {
    static final int BLOCK = 256, BYTES = 144;
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;

    Q4_KTensor(MemorySegment data, long size) { super(data, size); }

    @Override public GgmlType type() { return GgmlType.Q4_K; }

    private int u8(long o) { return data.get(ValueLayout.JAVA_BYTE, o) & 0xFF; }

    /** 6-bit scale (which=0) or min (which=1) of sub-block j; the 12 bytes pack 8 pairs as in ggml's get_scale_min_k4. */
    static int scaleMin(MemorySegment m, long sc, int j, int which) {
        int b0 = m.get(ValueLayout.JAVA_BYTE, sc + j) & 0xFF, b4 = m.get(ValueLayout.JAVA_BYTE, sc + j + 4) & 0xFF;
        if (j < 4) return which == 0 ? b0 & 63 : b4 & 63;
        int lo = m.get(ValueLayout.JAVA_BYTE, sc + j + 4) & 0xFF, hiS = m.get(ValueLayout.JAVA_BYTE, sc + j - 4) & 0xFF, hiM = b0;
        return which == 0 ? (lo & 0xF) | ((hiS >> 6) << 4) : (lo >> 4) | ((hiM >> 6) << 4);
    }

    static final ValueLayout.OfLong LONG_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt INT_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /**
     * The 8 six-bit scales of a super-block, scale j in byte j, unpacked from its packed bytes 0-7 ({@code lo}) and
     * 8-11 ({@code hi}) at once: ggml's get_scale_min_k4 ({@link #scaleMin}) for all eight.
     */
    static long scales(long lo, int hi) {
        long low = lo & 0x3F3F3F3FL, high = (hi & 0x0F0F0F0F | (int) (lo >>> 2) & 0x30303030) & 0xFFFFFFFFL;
        return low | high << 32;
    }

    /** The 8 six-bit mins of a super-block, min j in byte j, as {@link #scales}. */
    static long mins(long lo, int hi) {
        long low = lo >>> 32 & 0x3F3F3F3FL, high = (hi >>> 4 & 0x0F0F0F0F | (int) (lo >>> 34) & 0x30303030) & 0xFFFFFFFFL;
        return low | high << 32;
    }

    /** Byte j of packed {@link #scales} or {@link #mins}. */
    static int at(long packed, int j) { return (int) (packed >>> (8 * j)) & 0xFF; }

    @Override
    public float getFloat(long i) {
        long b = i / BLOCK * BYTES;
        int k = (int) (i % BLOCK), chunk = k / 64, w = k % 64, sub = 2 * chunk + w / 32;
        float d = Float.float16ToFloat(data.get(Q8_0Tensor.SHORT, b)), dmin = Float.float16ToFloat(data.get(Q8_0Tensor.SHORT, b + 2));
        int q = u8(b + 16 + chunk * 32 + w % 32);
        q = w < 32 ? q & 0xF : q >> 4;
        return d * scaleMin(data, b + 4, sub, 0) * q - dmin * scaleMin(data, b + 4, sub, 1);
    }

    static final VectorSpecies<Byte> B8 = ByteVector.SPECIES_64;
    static final VectorSpecies<Integer> I = IntVector.SPECIES_256;

    @Override
    public float dot(long offset, float[] x, int xOff, int n) {
        if (!Q8_0Tensor.WIDE) return dot256(offset, x, xOff, n);
        float[] xp = prepare(x, xOff, n);
        return dot512(offset, xp, 0, n) - minTerm(offset, xp, n, n);
    }

    /** The input is rearranged once per product and shared by all rows. */
    @Override
    protected Object prepareInput(float[] x, int xOff, int n) { return Q8_0Tensor.WIDE ? prepare(x, xOff, n) : null; }

    @Override
    protected float rowDot(long offset, float[] x, int xOff, Object prepared, int cols, int from, int n) {
        if (!(prepared instanceof float[] xp)) return dot(offset, x, xOff + from, n);
        return dot512(offset, xp, from, n) - minTerm(offset, xp, cols + from / 32, n);
    }

    static final VectorSpecies<Float> FW = FloatVector.SPECIES_512;
    static final VectorSpecies<Byte> BW = ByteVector.SPECIES_128;
    static final VectorSpecies<Long> L2 = LongVector.SPECIES_128;
    /** Constant operands as vectors: a scalar operand inlines a broadcast, and C2's inlining node budget is tight here. */
    private static final ByteVector NIBBLE = ByteVector.broadcast(BW, (byte) 0x0F);
    private static final ThreadLocal<float[]> PREPARED = ThreadLocal.withInitial(() -> new float[0]);

    /**
     * The thread's scratch array (grown when needed) holding x[xOff .. + n) in the order the kernel reads it: the 32
     * values that 16 weight bytes multiply (16 of sub-block 2c for the low nibbles, then the matching 16 of sub-block
     * 2c+1 for the high ones) contiguous, so the kernel indexes x linearly and the JIT drops its range checks; then
     * at [n + k] the sum of sub-block k (the min term needs Σ x).
     */
    static float[] prepare(float[] x, int xOff, int n) {
        float[] xp = PREPARED.get();
        if (xp.length < n + n / 32) PREPARED.set(xp = new float[n + n / 32]);
        for (int k = 0; k < n / 32; k++) {
            int src = xOff + (k >> 3) * 256 + ((k >> 1) & 3) * 64 + (k & 1) * 16;
            FloatVector lo = FloatVector.fromArray(FW, x, src), hi = FloatVector.fromArray(FW, x, src + 32);
            lo.intoArray(xp, 32 * k);
            hi.intoArray(xp, 32 * k + 16);
            xp[n + k] = Lanes.sum512(FloatVector.fromArray(FW, x, xOff + 32 * k).add(FloatVector.fromArray(FW, x, xOff + 32 * k + 16)));
        }
        return xp;
    }

    /**
     * Σ d*scale * q·x over the row (the min term is {@link #minTerm}). 16 bytes at a time on byte lanes: their low
     * nibbles (16 values of sub-block 2c) and high nibbles (shifted on int lanes, then masked: x86 has no byte shift;
     * 16 values of sub-block 2c+1) each widened once to 16 float lanes. Two such groups per step share their two
     * sub-blocks' scales, applied once. One flat loop, x read linearly (a nested loop, or x indexed by sub-block
     * position, kept range checks in the loop and ran at half the speed).
     */
    private float dot512(long offset, float[] xp, int xpOff, int n) {
        long blk = offset / BLOCK * BYTES - BYTES;
        FloatVector acc = FloatVector.zero(FW), acc2 = acc, acc3 = acc, acc4 = acc; // chains swapped each step (see Q4_0Tensor)
        float d = 0f;
        long scales = 0;
        int touched = 0;
        for (int g = 0; g < n / 32; g += 2) { // two 16-byte groups per step: the same two sub-blocks, scaled once
            int h = g & 7;
            if (h == 0) { // a new super-block and its scales
                blk += BYTES;
                touched += touch(blk) + touch(blk + 64) + touch(blk + 128); // see FloatTensor.AHEAD
                d = Float.float16ToFloat(data.get(Q8_0Tensor.SHORT, blk));
                scales = scales(data.get(LONG_LE, blk + 4), data.get(INT_LE, blk + 12));
            }
            ByteVector q = ByteVector.fromMemorySegment(BW, data, blk + 16 + 16 * h, ByteOrder.LITTLE_ENDIAN);
            ByteVector r = ByteVector.fromMemorySegment(BW, data, blk + 32 + 16 * h, ByteOrder.LITTLE_ENDIAN);
            FloatVector pLo = ((FloatVector) q.and(NIBBLE).convertShape(VectorOperators.B2F, FW, 0)).mul(FloatVector.fromArray(FW, xp, xpOff + 32 * g));
            pLo = ((FloatVector) r.and(NIBBLE).convertShape(VectorOperators.B2F, FW, 0)).fma(FloatVector.fromArray(FW, xp, xpOff + 32 * g + 32), pLo);
            FloatVector pHi = ((FloatVector) q.reinterpretAsInts().lanewise(VectorOperators.LSHR, 4).reinterpretAsBytes().and(NIBBLE)
                    .convertShape(VectorOperators.B2F, FW, 0)).mul(FloatVector.fromArray(FW, xp, xpOff + 32 * g + 16));
            pHi = ((FloatVector) r.reinterpretAsInts().lanewise(VectorOperators.LSHR, 4).reinterpretAsBytes().and(NIBBLE)
                    .convertShape(VectorOperators.B2F, FW, 0)).fma(FloatVector.fromArray(FW, xp, xpOff + 32 * g + 48), pHi);
            FloatVector nextLo = pLo.fma(FloatVector.broadcast(FW, d * at(scales, h)), acc2);
            FloatVector nextHi = pHi.fma(FloatVector.broadcast(FW, d * at(scales, h + 1)), acc4);
            acc2 = acc;
            acc = nextLo;
            acc4 = acc3;
            acc3 = nextHi;
        }
        keep(touched);
        return Lanes.sum512(acc.add(acc2).add(acc3.add(acc4)));
    }

    /**
     * Σ over the row's sub-blocks of dmin * min * Σ x, from the prepared sums: a pass of its own over the super-block
     * headers (the row is then in L1 for {@link #dot512}), which keeps the vector loop small enough for C2 to inline.
     */
    private float minTerm(long offset, float[] xp, int sumsOff, int n) {
        long blk = offset / BLOCK * BYTES;
        FloatVector acc = FloatVector.zero(F);
        for (int s = sumsOff; s < sumsOff + n / 32; s += 8, blk += BYTES) {
            // the 8 six-bit mins widened to 8 float lanes at once, times the 8 sub-block sums
            long m = mins(data.get(LONG_LE, blk + 4), data.get(INT_LE, blk + 12));
            FloatVector mv = (FloatVector) LongVector.broadcast(L2, m).reinterpretAsBytes().convertShape(VectorOperators.B2F, F, 0);
            acc = mv.mul(FloatVector.fromArray(F, xp, s)).fma(FloatVector.broadcast(F, Float.float16ToFloat(data.get(Q8_0Tensor.SHORT, blk + 2))), acc);
        }
        return Lanes.sum(acc);
    }

    private float dot256(long offset, float[] x, int xOff, int n) {
        long blk = offset / BLOCK * BYTES;
        FloatVector acc = FloatVector.zero(F), accMin = acc;
        int touched = 0;
        for (int j = 0; j < n; j += BLOCK, blk += BYTES) {
            touched += touch(blk) + touch(blk + 64) + touch(blk + 128); // see FloatTensor.AHEAD
            float d = Float.float16ToFloat(data.get(Q8_0Tensor.SHORT, blk)), dmin = Float.float16ToFloat(data.get(Q8_0Tensor.SHORT, blk + 2));
            // the 12 bytes of packed scales and mins read once as a long and an int, unpacked by shifts
            long lo = data.get(LONG_LE, blk + 4);
            int hi = data.get(INT_LE, blk + 12);
            long sc = scales(lo, hi), mn = mins(lo, hi);
            for (int c = 0; c < 4; c++) {
                // Σ w·x over a sub-block = d*scale * Σ q·x - dmin*min * Σ x: four independent chains per 64 weights
                // (q·x and x for each nibble half), scaled once per sub-block
                FloatVector qxLo = FloatVector.zero(F), qxHi = qxLo, xLo = qxLo, xHi = qxLo;
                int xo = xOff + j + c * 64;
                for (int p = 0; p < 32; p += 8) {
                    // nibbles split on 32-bit lanes: x86 has no byte-lane shifts (a ByteVector shift is emulated)
                    IntVector q = ((IntVector) ByteVector.fromMemorySegment(B8, data, blk + 16 + c * 32 + p, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I, 0)).and(0xFF);
                    FloatVector xl = FloatVector.fromArray(F, x, xo + p), xh = FloatVector.fromArray(F, x, xo + 32 + p);
                    qxLo = ((FloatVector) q.and(0x0F).convert(VectorOperators.I2F, 0)).fma(xl, qxLo);
                    qxHi = ((FloatVector) q.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).fma(xh, qxHi);
                    xLo = xLo.add(xl);
                    xHi = xHi.add(xh);
                }
                acc = qxLo.fma(FloatVector.broadcast(F, d * at(sc, 2 * c)), acc);
                acc = qxHi.fma(FloatVector.broadcast(F, d * at(sc, 2 * c + 1)), acc);
                accMin = xLo.fma(FloatVector.broadcast(F, dmin * at(mn, 2 * c)), accMin);
                accMin = xHi.fma(FloatVector.broadcast(F, dmin * at(mn, 2 * c + 1)), accMin);
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
            float d = Float.float16ToFloat(data.get(Q8_0Tensor.SHORT, blk)), dmin = Float.float16ToFloat(data.get(Q8_0Tensor.SHORT, blk + 2));
            long lo = data.get(LONG_LE, blk + 4);
            int hi = data.get(INT_LE, blk + 12);
            long sc = scales(lo, hi), mn = mins(lo, hi);
            for (int c = 0; c < 4; c++) {
                FloatVector sLo = FloatVector.broadcast(F, d * at(sc, 2 * c));
                FloatVector mLo = FloatVector.broadcast(F, -dmin * at(mn, 2 * c));
                FloatVector sHi = FloatVector.broadcast(F, d * at(sc, 2 * c + 1));
                FloatVector mHi = FloatVector.broadcast(F, -dmin * at(mn, 2 * c + 1));
                int o = outOff + j + c * 64;
                for (int p = 0; p < 32; p += 8) {
                    IntVector q = ((IntVector) ByteVector.fromMemorySegment(B8, data, blk + 16 + c * 32 + p, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I, 0)).and(0xFF);
                    ((FloatVector) q.and(0x0F).convert(VectorOperators.I2F, 0)).fma(sLo, mLo).intoArray(out, o + p);
                    ((FloatVector) q.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).fma(sHi, mHi).intoArray(out, o + 32 + p);
                }
            }
        }
    }
}
