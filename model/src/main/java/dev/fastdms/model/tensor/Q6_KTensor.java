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
 * ggml Q6_K: super-blocks of 256 = ql[128] (low 4 bits), qh[64] (high 2 bits), int8 scales[16], f16 d. Half h (128
 * values) uses ql[64h..], qh[32h..], scales[8h..]; for l < 32: values l, l+32, l+64, l+96 of the half take the low
 * nibble of ql[l], low nibble of ql[l+32], high nibble of ql[l], high nibble of ql[l+32], each with two bits of qh[l]
 * (bits 0-1, 2-3, 4-5, 6-7), minus 32; scale index l/16 + 0, 2, 4, 6.
 */
public final class Q6_KTensor extends FloatTensor {
    static final int BLOCK = 256, BYTES = 210;
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;

    Q6_KTensor(MemorySegment data, long size) { super(data, size); }

    @Override public GgmlType type() { return GgmlType.Q6_K; }

    private int u8(long o) { return data.get(ValueLayout.JAVA_BYTE, o) & 0xFF; }

    @Override
    public float getFloat(long i) {
        long b = i / BLOCK * BYTES;
        int k = (int) (i % BLOCK), h = k / 128, r = k % 128, quarter = r / 32, l = r % 32;
        long ql = b + 64L * h, qh = b + 128 + 32L * h, sc = b + 192 + 8L * h;
        int low = switch (quarter) {
            case 0 -> u8(ql + l) & 0xF;
            case 1 -> u8(ql + l + 32) & 0xF;
            case 2 -> u8(ql + l) >> 4;
            default -> u8(ql + l + 32) >> 4;
        };
        int q = (low | (((u8(qh + l) >> (2 * quarter)) & 3) << 4)) - 32;
        float d = Float.float16ToFloat(data.get(Q8_0Tensor.SHORT, b + 208));
        return d * data.get(ValueLayout.JAVA_BYTE, sc + l / 16 + 2 * quarter) * q;
    }

    static final VectorSpecies<Byte> B8 = ByteVector.SPECIES_64;
    static final VectorSpecies<Integer> I = IntVector.SPECIES_256;

    @Override
    public float dot(long offset, float[] x, int xOff, int n) {
        return Q8_0Tensor.WIDE ? dot512(offset, prepare(x, xOff, n), 0, n) : dot256(offset, x, xOff, n);
    }

    /** The input is rearranged once per product and shared by all rows. */
    @Override
    protected Object prepareInput(float[] x, int xOff, int n) { return Q8_0Tensor.WIDE ? prepare(x, xOff, n) : null; }

    @Override
    protected float rowDot(long offset, float[] x, int xOff, Object prepared, int cols, int from, int n) {
        return prepared instanceof float[] xp ? dot512(offset, xp, from, n) : dot(offset, x, xOff + from, n);
    }

    static final VectorSpecies<Float> FW = FloatVector.SPECIES_512;
    static final VectorSpecies<Byte> BW = ByteVector.SPECIES_128;
    private static final ThreadLocal<float[]> PREPARED = ThreadLocal.withInitial(() -> new float[0]);
    // constant vectors rather than scalar operands: each scalar operand inlines a broadcast, and the kernel must stay
    // under C2's inlining node budget or its final sum is left out of line and the accumulators boxed
    private static final ByteVector NIBBLE = ByteVector.broadcast(BW, (byte) 0x0F), PAIR = ByteVector.broadcast(BW, (byte) 0x30),
            CENTRE = ByteVector.broadcast(BW, (byte) 32);

    /**
     * The thread's scratch array (grown when needed) holding x[xOff .. + n) in the order the kernel reads it: group g
     * (half g/2 % 2 of super-block g/4, positions l0 = 16 * (g % 2) ..) puts the 16 values of each quarter one after
     * another, so the kernel indexes x linearly and the JIT drops its range checks.
     */
    private static float[] prepare(float[] x, int xOff, int n) {
        float[] xp = PREPARED.get();
        if (xp.length < n) PREPARED.set(xp = new float[n]);
        for (int g = 0; g < n / 64; g++) {
            int src = xOff + (g >> 2) * 256 + ((g >> 1) & 1) * 128 + (g & 1) * 16;
            for (int k = 0; k < 4; k++) FloatVector.fromArray(FW, x, src + 32 * k).intoArray(xp, 64 * g + 16 * k);
        }
        return xp;
    }

    /**
     * 16 positions of a half at a time on byte lanes: each quarter's 6-bit values are assembled from nibbles and
     * bit pairs (shifted on int lanes, then masked: x86 has no byte shift), re-centred, widened once to 16 float
     * lanes and scaled by their own scale (one per 16 values). Two passes over the row (in L1 for the second), one
     * per ql byte range; a single loop doing all four quarters exceeded C2's inlining node budget, which boxed its
     * accumulators.
     */
    private float dot512(long offset, float[] xp, int xpOff, int n) {
        return quarters512(offset, xp, xpOff, n, 0) + quarters512(offset, xp, xpOff, n, 1);
    }

    /**
     * Quarters p and p+2 of every half: the low and high nibbles of ql[l + 32p], with bits 2p..2p+1 and 2p+4..2p+5
     * of qh[l]. One flat loop, x read linearly (see Q4_KTensor).
     */
    private float quarters512(long offset, float[] xp, int xpOff, int n, int p) {
        long blk = offset / BLOCK * BYTES - BYTES;
        FloatVector acc = FloatVector.zero(FW), acc2 = acc;
        float d = 0f;
        int touched = 0, lowShift = 4 - 2 * p, highShift = 2 * p, xLow = 16 * p;
        for (int g = 0; g < n / 64; g++) {
            int part = g & 3, h = part >> 1, l0 = (part & 1) * 16;
            if (part == 0) {
                blk += BYTES;
                d = Float.float16ToFloat(data.get(Q8_0Tensor.SHORT, blk + 208));
            }
            if (p == 0) touched += touch(blk + 64 * part); // see FloatTensor.AHEAD
            long sc = blk + 192 + 8 * h + (part & 1) + 2 * p;
            ByteVector a = ByteVector.fromMemorySegment(BW, data, blk + 64 * h + l0 + 32 * p, ByteOrder.LITTLE_ENDIAN);
            ByteVector hb = ByteVector.fromMemorySegment(BW, data, blk + 128 + 32 * h + l0, ByteOrder.LITTLE_ENDIAN);
            ByteVector qLow = a.and(NIBBLE).or(hb.reinterpretAsInts().lanewise(VectorOperators.LSHL, lowShift).reinterpretAsBytes().and(PAIR));
            ByteVector qHigh = a.reinterpretAsInts().lanewise(VectorOperators.LSHR, 4).reinterpretAsBytes().and(NIBBLE)
                    .or(hb.reinterpretAsInts().lanewise(VectorOperators.LSHR, highShift).reinterpretAsBytes().and(PAIR));
            int xo = xpOff + 64 * g + xLow;
            FloatVector nextLow = ((FloatVector) qLow.sub(CENTRE).convertShape(VectorOperators.B2F, FW, 0))
                    .fma(FloatVector.fromArray(FW, xp, xo).mul(d * data.get(ValueLayout.JAVA_BYTE, sc)), acc);
            acc2 = ((FloatVector) qHigh.sub(CENTRE).convertShape(VectorOperators.B2F, FW, 0))
                    .fma(FloatVector.fromArray(FW, xp, xo + 32).mul(d * data.get(ValueLayout.JAVA_BYTE, sc + 4)), acc2);
            acc = nextLow;
        }
        keep(touched);
        return Lanes.sum512(acc.add(acc2));
    }

    private float dot256(long offset, float[] x, int xOff, int n) {
        long blk = offset / BLOCK * BYTES;
        FloatVector acc = FloatVector.zero(F), acc2 = acc, acc3 = acc, acc4 = acc; // one chain per quarter: FMA latency hidden
        for (int j = 0; j < n; j += BLOCK, blk += BYTES) {
            float d = Float.float16ToFloat(data.get(Q8_0Tensor.SHORT, blk + 208));
            for (int h = 0; h < 2; h++) {
                long ql = blk + 64L * h, qh = blk + 128 + 32L * h, sc = blk + 192 + 8L * h;
                int xo = xOff + j + 128 * h;
                for (int l0 = 0; l0 < 32; l0 += 16) {
                    // positions l0..l0+15 of each quarter share one scale: Σ q·x first, scaled once per quarter
                    FloatVector p1 = FloatVector.zero(F), p2 = p1, p3 = p1, p4 = p1;
                    for (int l = l0; l < l0 + 16; l += 8) {
                        // widen to 32-bit lanes first: x86 has no byte-lane shifts, int shifts are single instructions
                        IntVector a = ((IntVector) ByteVector.fromMemorySegment(B8, data, ql + l, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I, 0)).and(0xFF);
                        IntVector b = ((IntVector) ByteVector.fromMemorySegment(B8, data, ql + 32 + l, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I, 0)).and(0xFF);
                        IntVector hb = ((IntVector) ByteVector.fromMemorySegment(B8, data, qh + l, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I, 0)).and(0xFF);
                        IntVector q1 = a.and(0xF).or(hb.and(3).lanewise(VectorOperators.LSHL, 4)).sub(32);
                        IntVector q2 = b.and(0xF).or(hb.and(12).lanewise(VectorOperators.LSHL, 2)).sub(32);
                        IntVector q3 = a.lanewise(VectorOperators.LSHR, 4).or(hb.and(48)).sub(32);
                        IntVector q4 = b.lanewise(VectorOperators.LSHR, 4).or(hb.and(192).lanewise(VectorOperators.LSHR, 2)).sub(32);
                        p1 = ((FloatVector) q1.convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, x, xo + l), p1);
                        p2 = ((FloatVector) q2.convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, x, xo + 32 + l), p2);
                        p3 = ((FloatVector) q3.convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, x, xo + 64 + l), p3);
                        p4 = ((FloatVector) q4.convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, x, xo + 96 + l), p4);
                    }
                    int is = l0 / 16;
                    acc = p1.fma(FloatVector.broadcast(F, d * data.get(ValueLayout.JAVA_BYTE, sc + is)), acc);
                    acc2 = p2.fma(FloatVector.broadcast(F, d * data.get(ValueLayout.JAVA_BYTE, sc + is + 2)), acc2);
                    acc3 = p3.fma(FloatVector.broadcast(F, d * data.get(ValueLayout.JAVA_BYTE, sc + is + 4)), acc3);
                    acc4 = p4.fma(FloatVector.broadcast(F, d * data.get(ValueLayout.JAVA_BYTE, sc + is + 6)), acc4);
                }
            }
        }
        return Lanes.sum(acc.add(acc2).add(acc3.add(acc4)));
    }

    @Override
    public void copyTo(long offset, float[] out, int outOff, int n) {
        if (offset % BLOCK != 0 || n % BLOCK != 0) { super.copyTo(offset, out, outOff, n); return; }
        long blk = offset / BLOCK * BYTES;
        for (int j = 0; j < n; j += BLOCK, blk += BYTES) {
            float d = Float.float16ToFloat(data.get(Q8_0Tensor.SHORT, blk + 208));
            for (int h = 0; h < 2; h++) {
                long ql = blk + 64L * h, qh = blk + 128 + 32L * h, sc = blk + 192 + 8L * h;
                int o = outOff + j + 128 * h;
                for (int l = 0; l < 32; l += 8) {
                    int is = l / 16;
                    IntVector a = ((IntVector) ByteVector.fromMemorySegment(B8, data, ql + l, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I, 0)).and(0xFF);
                    IntVector b = ((IntVector) ByteVector.fromMemorySegment(B8, data, ql + 32 + l, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I, 0)).and(0xFF);
                    IntVector hb = ((IntVector) ByteVector.fromMemorySegment(B8, data, qh + l, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I, 0)).and(0xFF);
                    ((FloatVector) a.and(0xF).or(hb.and(3).lanewise(VectorOperators.LSHL, 4)).sub(32).convert(VectorOperators.I2F, 0))
                            .mul(d * data.get(ValueLayout.JAVA_BYTE, sc + is)).intoArray(out, o + l);
                    ((FloatVector) b.and(0xF).or(hb.and(12).lanewise(VectorOperators.LSHL, 2)).sub(32).convert(VectorOperators.I2F, 0))
                            .mul(d * data.get(ValueLayout.JAVA_BYTE, sc + is + 2)).intoArray(out, o + 32 + l);
                    ((FloatVector) a.lanewise(VectorOperators.LSHR, 4).or(hb.and(48)).sub(32).convert(VectorOperators.I2F, 0))
                            .mul(d * data.get(ValueLayout.JAVA_BYTE, sc + is + 4)).intoArray(out, o + 64 + l);
                    ((FloatVector) b.lanewise(VectorOperators.LSHR, 4).or(hb.and(192).lanewise(VectorOperators.LSHR, 2)).sub(32).convert(VectorOperators.I2F, 0))
                            .mul(d * data.get(ValueLayout.JAVA_BYTE, sc + is + 6)).intoArray(out, o + 96 + l);
                }
            }
        }
    }
}
