package dev.fastdms.cache;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.util.Arrays;

/**
 * Rows of {@code dim} values (one key or one value per token slot) in one {@link KvDtype}, stored in pages of
 * {@code pageRows} rows: growing adds a page and copies nothing (growing one flat array by copying would cost time
 * quadratic in the context). Attention reads a row by decoding it into floats ({@link #decode}); F32 rows are read in
 * place ({@link #floatPage}).
 */
abstract sealed class KvStore permits KvStore.F32, KvStore.Half, KvStore.Fp8, KvStore.Q8 {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    final int dim, pageRows;
    int capacity;

    KvStore(int dim, int pageRows) { this.dim = dim; this.pageRows = pageRows; }

    static KvStore of(KvDtype t, int dim, int pageRows) {
        return switch (t) {
            case F32 -> new F32(dim, pageRows);
            case F16 -> new Half(dim, pageRows, false);
            case BF16 -> new Half(dim, pageRows, true);
            case FP8_E4M3 -> new Fp8(dim, pageRows);
            case Q8 -> new Q8(dim, pageRows);
        };
    }

    /** Bytes one row takes, scales included. */
    abstract int rowBytes();

    /** Adds one page of {@code pageRows} rows. */
    abstract void addPage();

    abstract void put(int slot, float[] src, int off);

    /** Row {@code slot} as floats into dst[off ..]. */
    abstract void decode(int slot, float[] dst, int off);

    /** The page holding F32 row {@code slot} (read in place at (slot % pageRows) * dim), or null for other types. */
    float[] floatPage(int slot) { return null; }

    abstract void move(int from, int to);

    long bytes() { return (long) capacity * rowBytes(); }

    static <T> T[] append(T[] pages, T page) {
        T[] n = Arrays.copyOf(pages, pages.length + 1);
        n[pages.length] = page;
        return n;
    }

    static final class F32 extends KvStore {
        float[][] pages = new float[0][];
        F32(int dim, int pageRows) { super(dim, pageRows); }
        @Override int rowBytes() { return 4 * dim; }
        @Override void addPage() { pages = append(pages, new float[pageRows * dim]); capacity += pageRows; }
        @Override void put(int slot, float[] src, int off) { System.arraycopy(src, off, pages[slot / pageRows], slot % pageRows * dim, dim); }
        @Override void decode(int slot, float[] dst, int off) { System.arraycopy(pages[slot / pageRows], slot % pageRows * dim, dst, off, dim); }
        @Override float[] floatPage(int slot) { return pages[slot / pageRows]; }
        @Override void move(int from, int to) { System.arraycopy(pages[from / pageRows], from % pageRows * dim, pages[to / pageRows], to % pageRows * dim, dim); }
    }

    /** IEEE half (round to nearest even) or bfloat16 (round to nearest even on the upper 16 bits). */
    static final class Half extends KvStore {
        final boolean bf16;
        short[][] pages = new short[0][];
        Half(int dim, int pageRows, boolean bf16) { super(dim, pageRows); this.bf16 = bf16; }
        @Override int rowBytes() { return 2 * dim; }
        @Override void addPage() { pages = append(pages, new short[pageRows * dim]); capacity += pageRows; }

        static short toBf16(float f) {
            int bits = Float.floatToRawIntBits(f);
            if (Float.isNaN(f)) return (short) ((bits >>> 16) | 0x40);
            return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
        }

        @Override
        void put(int slot, float[] src, int off) {
            short[] a = pages[slot / pageRows];
            int o = slot % pageRows * dim;
            for (int i = 0; i < dim; i++) a[o + i] = bf16 ? toBf16(src[off + i]) : Float.floatToFloat16(src[off + i]);
        }

        @Override
        void decode(int slot, float[] dst, int off) {
            short[] a = pages[slot / pageRows];
            int o = slot % pageRows * dim, i = 0;
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

        @Override void move(int from, int to) { System.arraycopy(pages[from / pageRows], from % pageRows * dim, pages[to / pageRows], to % pageRows * dim, dim); }
    }

    /**
     * FP8 E4M3 (bias 7, no infinities, max 448) with one float scale per row (absmax / 448), as FastDMS stores its
     * compact cache: one byte per value.
     */
    static final class Fp8 extends KvStore {
        byte[][] pages = new byte[0][];
        float[][] scales = new float[0][];
        Fp8(int dim, int pageRows) { super(dim, pageRows); }
        @Override int rowBytes() { return dim + 4; }
        @Override void addPage() { pages = append(pages, new byte[pageRows * dim]); scales = append(scales, new float[pageRows]); capacity += pageRows; }

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
            scales[slot / pageRows][slot % pageRows] = s;
            byte[] a = pages[slot / pageRows];
            int o = slot % pageRows * dim;
            for (int i = 0; i < dim; i++) a[o + i] = encode(src[off + i] * inv);
        }

        @Override
        void decode(int slot, float[] dst, int off) {
            byte[] a = pages[slot / pageRows];
            float scale = scales[slot / pageRows][slot % pageRows];
            int o = slot % pageRows * dim, i = 0;
            float s = scale * 0x1p120f;
            for (; i + 8 <= dim; i += 8) {
                IntVector b = (IntVector) ByteVector.fromArray(ByteVector.SPECIES_64, a, o + i).convertShape(VectorOperators.B2I, IntVector.SPECIES_256, 0);
                FloatVector mag = b.and(0x7F).lanewise(VectorOperators.LSHL, 20).reinterpretAsFloats().mul(s);
                mag.reinterpretAsInts().or(b.and(0x80).lanewise(VectorOperators.LSHL, 24)).reinterpretAsFloats().intoArray(dst, off + i);
            }
            for (; i < dim; i++) dst[off + i] = decodeScalar(a[o + i]) * scale;
        }

        @Override
        void move(int from, int to) {
            System.arraycopy(pages[from / pageRows], from % pageRows * dim, pages[to / pageRows], to % pageRows * dim, dim);
            scales[to / pageRows][to % pageRows] = scales[from / pageRows][from % pageRows];
        }
    }

    /**
     * int8 with one float scale per block of 32 values (absmax / 127), like ggml's Q8_0; a head dimension that is
     * not a multiple of 32 gets one block per row.
     */
    static final class Q8 extends KvStore {
        final int block, blocks;
        byte[][] pages = new byte[0][];
        float[][] scales = new float[0][];
        Q8(int dim, int pageRows) { super(dim, pageRows); block = dim % 32 == 0 ? 32 : dim; blocks = dim / block; }
        @Override int rowBytes() { return dim + 4 * blocks; }
        @Override void addPage() { pages = append(pages, new byte[pageRows * dim]); scales = append(scales, new float[pageRows * blocks]); capacity += pageRows; }

        @Override
        void put(int slot, float[] src, int off) {
            byte[] a = pages[slot / pageRows];
            float[] sc = scales[slot / pageRows];
            int r = slot % pageRows;
            for (int b = 0; b < blocks; b++) {
                float max = 0f;
                for (int i = 0; i < block; i++) max = Math.max(max, Math.abs(src[off + b * block + i]));
                float s = max / 127f, inv = s == 0f ? 0f : 1f / s;
                sc[r * blocks + b] = s;
                for (int i = 0; i < block; i++) a[r * dim + b * block + i] = (byte) Math.round(src[off + b * block + i] * inv);
            }
        }

        @Override
        void decode(int slot, float[] dst, int off) {
            byte[] a = pages[slot / pageRows];
            float[] sc = scales[slot / pageRows];
            int r = slot % pageRows;
            for (int b = 0; b < blocks; b++) {
                float scale = sc[r * blocks + b];
                FloatVector s = FloatVector.broadcast(F, scale);
                int o = r * dim + b * block, i = 0;
                for (; i + 8 <= block; i += 8) {
                    ((FloatVector) ByteVector.fromArray(ByteVector.SPECIES_64, a, o + i).convertShape(VectorOperators.B2F, F, 0)).mul(s)
                            .intoArray(dst, off + b * block + i);
                }
                for (; i < block; i++) dst[off + b * block + i] = a[o + i] * scale;
            }
        }

        @Override
        void move(int from, int to) {
            System.arraycopy(pages[from / pageRows], from % pageRows * dim, pages[to / pageRows], to % pageRows * dim, dim);
            System.arraycopy(scales[from / pageRows], from % pageRows * blocks, scales[to / pageRows], to % pageRows * blocks, blocks);
        }
    }
}
