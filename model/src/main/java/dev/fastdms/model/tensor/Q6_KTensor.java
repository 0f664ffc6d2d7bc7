package dev.fastdms.model.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
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
    static final VectorSpecies<Byte> B32 = ByteVector.SPECIES_256;

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

    @Override
    public float dot(long offset, float[] x, int xOff, int n) {
        long blk = offset / BLOCK * BYTES;
        float total = 0f;
        for (int j = 0; j < n; j += BLOCK, blk += BYTES) {
            float d = Float.float16ToFloat(data.get(Q8_0Tensor.SHORT, blk + 208));
            for (int h = 0; h < 2; h++) {
                long ql = blk + 64L * h, qh = blk + 128 + 32L * h, sc = blk + 192 + 8L * h;
                ByteVector a = ByteVector.fromMemorySegment(B32, data, ql, ByteOrder.LITTLE_ENDIAN);
                ByteVector b = ByteVector.fromMemorySegment(B32, data, ql + 32, ByteOrder.LITTLE_ENDIAN);
                ByteVector hb = ByteVector.fromMemorySegment(B32, data, qh, ByteOrder.LITTLE_ENDIAN);
                ByteVector[] q = {
                        a.and((byte) 0xF).or(hb.and((byte) 3).lanewise(VectorOperators.LSHL, 4)).sub((byte) 32),
                        b.and((byte) 0xF).or(hb.lanewise(VectorOperators.LSHR, 2).and((byte) 3).lanewise(VectorOperators.LSHL, 4)).sub((byte) 32),
                        a.lanewise(VectorOperators.LSHR, 4).or(hb.lanewise(VectorOperators.LSHR, 4).and((byte) 3).lanewise(VectorOperators.LSHL, 4)).sub((byte) 32),
                        b.lanewise(VectorOperators.LSHR, 4).or(hb.lanewise(VectorOperators.LSHR, 6).and((byte) 3).lanewise(VectorOperators.LSHL, 4)).sub((byte) 32)};
                int xo = xOff + j + 128 * h;
                for (int quarter = 0; quarter < 4; quarter++) {
                    FloatVector s0 = FloatVector.zero(F), s1 = s0;
                    for (int p = 0; p < 4; p++) {
                        FloatVector v = ((FloatVector) q[quarter].convertShape(VectorOperators.B2F, F, p)).mul(FloatVector.fromArray(F, x, xo + 32 * quarter + 8 * p));
                        if (p < 2) s0 = s0.add(v); else s1 = s1.add(v);
                    }
                    total += d * (data.get(ValueLayout.JAVA_BYTE, sc + 2 * quarter) * s0.reduceLanes(VectorOperators.ADD)
                            + data.get(ValueLayout.JAVA_BYTE, sc + 1 + 2 * quarter) * s1.reduceLanes(VectorOperators.ADD));
                }
            }
        }
        return total;
    }
}
