package dev.fastdms.cache;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.util.Arrays;

/**
 * Rows of {@code dim} values (one key or one value per token slot) in one {@link KvDtype}. Attention reads a row by
 * decoding it into floats ({@link #decode}); F32 rows are read in place ({@link #floats}).
 */
abstract sealed class KvStore permits KvStore.F32, KvStore.Half, KvStore.Fp8, KvStore.Q8 {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    final int dim;
    int capacity;

    KvStore(int dim) { this.dim = dim; }

    static KvStore of(KvDtype t, int dim) {
        return switch (t) {
            case F32 -> new F32(dim);
            case F16 -> new Half(dim, false);
            case BF16 -> new Half(dim, true);
            case FP8_E4M3 -> new Fp8(dim);
            case Q8 -> new Q8(dim);
        };
    }

    /** Bytes one row takes, scales included. */
    abstract int rowBytes();

    abstract void grow(int newCapacity);

    abstract void put(int slot, float[] src, int off);

    /** Row {@code slot} as floats into dst[off ..]. */
    abstract void decode(int slot, float[] dst, int off);

    /** The backing array when rows are stored as floats (read in place), else null. */
    float[] floats() { return null; }

    abstract void move(int from, int to);

    long bytes() { return (long) capacity * rowBytes(); }

    static final class F32 extends KvStore {
        float[] a = new float[0];
        F32(int dim) { super(dim); }
        @Override int rowBytes() { return 4 * dim; }
        @Override void grow(int c) { a = Arrays.copyOf(a, c * dim); capacity = c; }
        @Override void put(int slot, float[] src, int off) { System.arraycopy(src, off, a, slot * dim, dim); }
        @Override void decode(int slot, float[] dst, int off) { System.arraycopy(a, slot * dim, dst, off, dim); }
        @Override float[] floats() { return a; }
        @Override void move(int from, int to) { System.arraycopy(a, from * dim, a, to * dim, dim); }
    }

    /** IEEE half (round to nearest even) or bfloat16 (round to nearest even on the upper 16 bits). */
    static final class Half extends KvStore {
        final boolean bf16;
        short[] a = new short[0];
        Half(int dim, boolean bf16) { super(dim); this.bf16 = bf16; }
        @Override int rowBytes() { return 2 * dim; }
        @Override void grow(int c) { a = Arrays.copyOf(a, c * dim); capacity = c; }

        static short toBf16(float f) {
            int bits = Float.floatToRawIntBits(f);
            if (Float.isNaN(f)) return (short) ((bits >>> 16) | 0x40);
            return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
        }

        @Override
        void put(int slot, float[] src, int off) {
            int o = slot * dim;
            for (int i = 0; i < dim; i++) a[o + i] = bf16 ? toBf16(src[off + i]) : Float.floatToFloat16(src[off + i]);
        }

        @Override
        void decode(int slot, float[] dst, int off) {
            int o = slot * dim, i = 0;
            for (; i + 8 <= dim; i += 8) {
                IntVector h = (IntVector) ShortVector.fromArray(ShortVector.SPECIES_128, a, o + i).convertShape(VectorOperators.S2I, IntVector.SPECIES_256, 0);
                FloatVector f;
                if (bf16) {
                    f = h.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
                } else {
                    // 15 magnitude bits into a float's exponent/mantissa = value * 2^-112 (subnormals included)
                    FloatVector mag = h.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f);
                    f = mag.reinterpretAsInts().or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
                }
                f.intoArray(dst, off + i);
            }
            for (; i < dim; i++) dst[off + i] = bf16 ? Float.intBitsToFloat(a[o + i] << 16) : Float.float16ToFloat(a[o + i]);
        }

        @Override void move(int from, int to) { System.arraycopy(a, from * dim, a, to * dim, dim); }
    }

    /**
     * FP8 E4M3 (bias 7, no infinities, max 448) with one float scale per row (absmax / 448), as FastDMS stores its
     * compact cache: one byte per value.
     */
    static final class Fp8 extends KvStore {
        byte[] a = new byte[0];
        float[] scale = new float[0];
        Fp8(int dim) { super(dim); }
        @Override int rowBytes() { return dim + 4; }
        @Override void grow(int c) { a = Arrays.copyOf(a, c * dim); scale = Arrays.copyOf(scale, c); capacity = c; }

        /** Nearest E4M3 code (ties to even) of x, saturating at ±448. */
        static byte encode(float x) {
            int sign = x < 0 || (x == 0 && 1 / x < 0) ? 0x80 : 0;
            float m = Math.abs(x);
            if (!(m < 464f)) return (byte) (sign | 0x7E); // saturate (also NaN) at 448
            int code;
            if (m < 0x1p-6f) {
                code = (int) Math.rint(m * 512f); // subnormal steps of 2^-9; 8 is the smallest normal
            } else {
                int e = Math.getExponent(m);
                int mant = (int) Math.rint((m / Math.scalb(1f, e) - 1f) * 8f);
                if (mant == 8) { e++; mant = 0; }
                code = ((e + 7) << 3) | mant;
                if (code > 0x7E) code = 0x7E;
            }
            return (byte) (sign | code);
        }

        /** Exact value of an E4M3 code: the 7 magnitude bits placed in a float scaled by 2^120, then the sign. */
        static float decodeScalar(byte b) {
            float mag = Float.intBitsToFloat((b & 0x7F) << 20) * 0x1p120f;
            return (b & 0x80) != 0 ? -mag : mag;
        }

        @Override
        void put(int slot, float[] src, int off) {
            float max = 0f;
            for (int i = 0; i < dim; i++) max = Math.max(max, Math.abs(src[off + i]));
            float s = max == 0f ? 1f : max / 448f, inv = 1f / s;
            scale[slot] = s;
            int o = slot * dim;
            for (int i = 0; i < dim; i++) a[o + i] = encode(src[off + i] * inv);
        }

        @Override
        void decode(int slot, float[] dst, int off) {
            int o = slot * dim, i = 0;
            float s = scale[slot] * 0x1p120f;
            for (; i + 8 <= dim; i += 8) {
                IntVector b = (IntVector) ByteVector.fromArray(ByteVector.SPECIES_64, a, o + i).convertShape(VectorOperators.B2I, IntVector.SPECIES_256, 0);
                FloatVector mag = b.and(0x7F).lanewise(VectorOperators.LSHL, 20).reinterpretAsFloats().mul(s);
                mag.reinterpretAsInts().or(b.and(0x80).lanewise(VectorOperators.LSHL, 24)).reinterpretAsFloats().intoArray(dst, off + i);
            }
            for (; i < dim; i++) dst[off + i] = decodeScalar(a[o + i]) * scale[slot];
        }

        @Override
        void move(int from, int to) {
            System.arraycopy(a, from * dim, a, to * dim, dim);
            scale[to] = scale[from];
        }
    }

    /**
     * int8 with one float scale per block of 32 values (absmax / 127), like ggml's Q8_0; a head dimension that is
     * not a multiple of 32 gets one block per row.
     */
    static final class Q8 extends KvStore {
        final int BLOCK;
        byte[] a = new byte[0];
        float[] scale = new float[0];
        final int blocks;
        Q8(int dim) { super(dim); BLOCK = dim % 32 == 0 ? 32 : dim; blocks = dim / BLOCK; }
        @Override int rowBytes() { return dim + 4 * blocks; }
        @Override void grow(int c) { a = Arrays.copyOf(a, c * dim); scale = Arrays.copyOf(scale, c * blocks); capacity = c; }

        @Override
        void put(int slot, float[] src, int off) {
            for (int b = 0; b < blocks; b++) {
                float max = 0f;
                for (int i = 0; i < BLOCK; i++) max = Math.max(max, Math.abs(src[off + b * BLOCK + i]));
                float s = max / 127f, inv = s == 0f ? 0f : 1f / s;
                scale[slot * blocks + b] = s;
                for (int i = 0; i < BLOCK; i++) a[slot * dim + b * BLOCK + i] = (byte) Math.round(src[off + b * BLOCK + i] * inv);
            }
        }

        @Override
        void decode(int slot, float[] dst, int off) {
            for (int b = 0; b < blocks; b++) {
                FloatVector s = FloatVector.broadcast(F, scale[slot * blocks + b]);
                int o = slot * dim + b * BLOCK, i = 0;
                for (; i + 8 <= BLOCK; i += 8) {
                    ((FloatVector) ByteVector.fromArray(ByteVector.SPECIES_64, a, o + i).convertShape(VectorOperators.B2F, F, 0)).mul(s)
                            .intoArray(dst, off + b * BLOCK + i);
                }
                for (; i < BLOCK; i++) dst[off + b * BLOCK + i] = a[o + i] * scale[slot * blocks + b];
            }
        }

        @Override
        void move(int from, int to) {
            System.arraycopy(a, from * dim, a, to * dim, dim);
            System.arraycopy(scale, from * blocks, scale, to * blocks, blocks);
        }
    }
}
