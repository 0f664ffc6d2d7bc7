package dev.fastdms.cache;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.util.Arrays;

/**
 * Rows of {@code dim} values (the key, or the value, of one token slot) in one {@link KvDtype}, stored in pages of
 * {@code pageRows} rows. Growing adds a page and copies no row (growing one flat array would cost time quadratic in
 * the context and a transient second copy of the cache).
 *
 * <p>Attention reads the stored form: F32 pages are read in place ({@link #f32Page}); other types decode a short run
 * of consecutive rows ({@link #decodeRows}, at most a tile of {@link HeadKv#TILE} rows) into a scratch buffer that
 * stays in L1, so the cache is never dequantised as a whole.
 */
abstract sealed class KvStore permits KvStore.F32, KvStore.Half, KvStore.Fp8, KvStore.Q8 {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    static final int L = F.length();
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

    /** Bytes one row takes, its scales included. */
    abstract int rowBytes();

    /** Adds one page of {@code pageRows} rows. */
    abstract void addPage();

    /** Encodes src[off .. off+dim) into row {@code slot}. */
    abstract void put(int slot, float[] src, int off);

    /** Decodes {@code rows} consecutive rows from {@code slot} (all in one page) into dst[off ..], row after row. */
    abstract void decodeRows(int slot, int rows, float[] dst, int off);

    /** Row {@code slot} as floats into dst[off ..]. */
    final void decode(int slot, float[] dst, int off) { decodeRows(slot, 1, dst, off); }

    /** The page holding row {@code slot} when rows are stored as F32 (read in place), else null. */
    float[] f32Page(int slot) { return null; }

    /** Copies row {@code from} (and its scales) over row {@code to}. */
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
        @Override void decodeRows(int slot, int rows, float[] dst, int off) { System.arraycopy(pages[slot / pageRows], slot % pageRows * dim, dst, off, rows * dim); }
        @Override float[] f32Page(int slot) { return pages[slot / pageRows]; }
        @Override void move(int from, int to) { System.arraycopy(pages[from / pageRows], from % pageRows * dim, pages[to / pageRows], to % pageRows * dim, dim); }
    }

    /**
     * IEEE binary16 (round to nearest even, saturating at ±65504 so a stored value is always finite) or bfloat16
     * (round to nearest even on the upper 16 bits of the float).
     */
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

        static short toF16(float f) { return Float.floatToFloat16(Math.max(-65504f, Math.min(65504f, f))); }

        @Override
        void put(int slot, float[] src, int off) {
            short[] a = pages[slot / pageRows];
            int o = slot % pageRows * dim;
            if (bf16) for (int i = 0; i < dim; i++) a[o + i] = toBf16(src[off + i]);
            else for (int i = 0; i < dim; i++) a[o + i] = toF16(src[off + i]);
        }

        @Override
        void decodeRows(int slot, int rows, float[] dst, int off) {
            short[] a = pages[slot / pageRows];
            int o = slot % pageRows * dim, n = rows * dim, i = 0;
            if (bf16) {
                for (; i + L <= n; i += L) {
                    IntVector h = (IntVector) ShortVector.fromArray(ShortVector.SPECIES_128, a, o + i).convertShape(VectorOperators.S2I, IntVector.SPECIES_256, 0);
                    h.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoArray(dst, off + i);
                }
                for (; i < n; i++) dst[off + i] = Float.intBitsToFloat(a[o + i] << 16);
            } else {
                for (; i + L <= n; i += L) {
                    IntVector h = (IntVector) ShortVector.fromArray(ShortVector.SPECIES_128, a, o + i).convertShape(VectorOperators.S2I, IntVector.SPECIES_256, 0);
                    // the 15 magnitude bits moved into a float's exponent and mantissa are the value times 2^-112,
                    // subnormals included; the sign goes back in separately
                    FloatVector mag = h.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f);
                    mag.reinterpretAsInts().or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats().intoArray(dst, off + i);
                }
                for (; i < n; i++) dst[off + i] = Float.float16ToFloat(a[o + i]);
            }
        }

        @Override void move(int from, int to) { System.arraycopy(pages[from / pageRows], from % pageRows * dim, pages[to / pageRows], to % pageRows * dim, dim); }
    }

    /**
     * FP8 E4M3 (sign, 4 exponent bits with bias 7, 3 mantissa bits; no infinities; largest finite 448) with one float
     * scale per row = absmax / 448, so the row's largest magnitude maps to 448 and nothing saturates except rounding.
     */
    static final class Fp8 extends KvStore {
        byte[][] pages = new byte[0][];
        float[][] scales = new float[0][];
        Fp8(int dim, int pageRows) { super(dim, pageRows); }
        @Override int rowBytes() { return dim + 4; }
        @Override void addPage() { pages = append(pages, new byte[pageRows * dim]); scales = append(scales, new float[pageRows]); capacity += pageRows; }

        /** Nearest E4M3 code of x (ties to even), saturating at ±448 (NaN too). */
        static byte encode(float x) {
            int sign = x < 0 || (x == 0 && 1 / x < 0) ? 0x80 : 0;
            float m = Math.abs(x);
            if (!(m < 464f)) return (byte) (sign | 0x7E); // 464 is halfway between 448 and the (NaN) next code
            int code;
            if (m < 0x1p-6f) {
                code = (int) Math.rint(m * 512f); // subnormal steps of 2^-9; code 8 is the smallest normal
            } else {
                int e = Math.getExponent(m);
                int mant = (int) Math.rint((m / Math.scalb(1f, e) - 1f) * 8f);
                if (mant == 8) { e++; mant = 0; }
                code = Math.min(0x7E, ((e + 7) << 3) | mant);
            }
            return (byte) (sign | code);
        }

        /**
         * Exact value of an E4M3 code: its 7 magnitude bits placed at bit 20 of a float are the value times 2^-120
         * (float exponent bias 127 - e4m3 bias 7 = 120; e4m3 subnormals land on float subnormals), then the sign.
         */
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
        void decodeRows(int slot, int rows, float[] dst, int off) {
            byte[] a = pages[slot / pageRows];
            float[] sc = scales[slot / pageRows];
            int r0 = slot % pageRows;
            for (int r = 0; r < rows; r++) {
                float scale = sc[r0 + r];
                int o = (r0 + r) * dim, d = off + r * dim, i = 0;
                for (; i + L <= dim; i += L) {
                    IntVector b = (IntVector) ByteVector.fromArray(ByteVector.SPECIES_64, a, o + i).convertShape(VectorOperators.B2I, IntVector.SPECIES_256, 0);
                    // two multiplies: scale * 2^120 alone could overflow for rows with absmax above ~1e5
                    FloatVector mag = b.and(0x7F).lanewise(VectorOperators.LSHL, 20).reinterpretAsFloats().mul(0x1p120f).mul(scale);
                    mag.reinterpretAsInts().or(b.and(0x80).lanewise(VectorOperators.LSHL, 24)).reinterpretAsFloats().intoArray(dst, d + i);
                }
                for (; i < dim; i++) dst[d + i] = decodeScalar(a[o + i]) * scale;
            }
        }

        @Override
        void move(int from, int to) {
            System.arraycopy(pages[from / pageRows], from % pageRows * dim, pages[to / pageRows], to % pageRows * dim, dim);
            scales[to / pageRows][to % pageRows] = scales[from / pageRows][from % pageRows];
        }
    }

    /**
     * int8 with one float scale per block of 32 values ({@link Q8Block}: ggml's Q8_0 rule, the scale kept as a float). A head
     * dimension that is not a multiple of 32 gets a single block per row.
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
            for (int b = 0; b < blocks; b++) sc[r * blocks + b] = Q8Block.quantize(src, off + b * block, block, a, r * dim + b * block);
        }

        @Override
        void decodeRows(int slot, int rows, float[] dst, int off) {
            byte[] a = pages[slot / pageRows];
            float[] sc = scales[slot / pageRows];
            int r0 = slot % pageRows, nb = rows * blocks;
            // blocks of consecutive rows are consecutive: decode them as one run
            for (int b = 0; b < nb; b++) {
                float scale = sc[r0 * blocks + b];
                int o = r0 * dim + b * block, d = off + b * block, i = 0;
                for (; i + L <= block; i += L) {
                    ((FloatVector) ByteVector.fromArray(ByteVector.SPECIES_64, a, o + i).convertShape(VectorOperators.B2F, F, 0)).mul(scale).intoArray(dst, d + i);
                }
                for (; i < block; i++) dst[d + i] = a[o + i] * scale;
            }
        }

        @Override
        void move(int from, int to) {
            System.arraycopy(pages[from / pageRows], from % pageRows * dim, pages[to / pageRows], to % pageRows * dim, dim);
            System.arraycopy(scales[from / pageRows], from % pageRows * blocks, scales[to / pageRows], to % pageRows * blocks, blocks);
        }
    }
}
