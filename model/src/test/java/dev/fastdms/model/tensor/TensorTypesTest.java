package dev.fastdms.model.tensor;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Block layouts built byte by byte from chosen integers, with expected floats computed from the format definitions;
 * then the vectorised products against a double-precision reference.
 */
class TensorTypesTest {
    static void f16(byte[] b, int off, float v) {
        short h = Float.floatToFloat16(v);
        b[off] = (byte) h;
        b[off + 1] = (byte) (h >> 8);
    }

    @Test
    void q8_0() {
        byte[] b = new byte[34 * 2];
        float[] want = new float[64];
        for (int blk = 0; blk < 2; blk++) {
            float d = blk == 0 ? 0.5f : -0.125f;
            f16(b, blk * 34, d);
            for (int i = 0; i < 32; i++) {
                int q = (i * 37 + blk * 11) % 255 - 127;
                b[blk * 34 + 2 + i] = (byte) q;
                want[blk * 32 + i] = d * q;
            }
        }
        check(GgmlType.Q8_0, b, want);
    }

    @Test
    void q4_0() {
        byte[] b = new byte[18];
        float[] want = new float[32];
        f16(b, 0, 0.25f);
        int[] q = new int[32];
        for (int i = 0; i < 32; i++) q[i] = (i * 7 + 3) % 16;
        for (int j = 0; j < 16; j++) b[2 + j] = (byte) (q[j] | (q[j + 16] << 4));
        for (int i = 0; i < 32; i++) want[i] = 0.25f * (q[i] - 8);
        check(GgmlType.Q4_0, b, want);
    }

    @Test
    void q4_K() {
        byte[] b = new byte[144];
        float d = 0.0625f, dmin = 0.5f;
        f16(b, 0, d);
        f16(b, 2, dmin);
        int[] sc = {1, 63, 17, 40, 5, 62, 33, 9}, mn = {0, 12, 63, 7, 50, 1, 28, 44};
        // 12 scale bytes: j<4 low 6 bits of bytes j (scale) and j+4 (min); scales/mins 4..7 split into a low nibble in
        // bytes 8..11 and two high bits in the top of bytes j-4 (scale) and j (min)
        for (int j = 0; j < 4; j++) {
            b[4 + j] = (byte) ((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
            b[4 + j + 4] = (byte) ((mn[j] & 63) | ((mn[j + 4] >> 4) << 6));
            b[4 + j + 8] = (byte) ((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
        }
        int[] q = new int[256];
        for (int i = 0; i < 256; i++) q[i] = (i * 5 + i / 7) % 16;
        float[] want = new float[256];
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) {
                b[16 + c * 32 + l] = (byte) (q[64 * c + l] | (q[64 * c + 32 + l] << 4));
                want[64 * c + l] = d * sc[2 * c] * q[64 * c + l] - dmin * mn[2 * c];
                want[64 * c + 32 + l] = d * sc[2 * c + 1] * q[64 * c + 32 + l] - dmin * mn[2 * c + 1];
            }
        }
        check(GgmlType.Q4_K, b, want);
    }

    /** The kernels' shift-based unpacking of Q4_K's 12 scale bytes agrees with the byte-wise port of ggml's get_scale_min_k4. */
    @Test
    void q4_KScalesUnpackedFromTwoWords() {
        SplittableRandom r = new SplittableRandom(12);
        MemorySegment m = MemorySegment.ofArray(new byte[12]);
        for (int trial = 0; trial < 2000; trial++) {
            for (int i = 0; i < 12; i++) m.set(ValueLayout.JAVA_BYTE, i, (byte) r.nextInt(256));
            long lo = m.get(Q4_KTensor.LONG_LE, 0);
            int hi = m.get(Q4_KTensor.INT_LE, 8);
            for (int j = 0; j < 8; j++) {
                assertEquals(Q4_KTensor.scaleMin(m, 0, j, 0), Q4_KTensor.at(Q4_KTensor.scales(lo, hi), j), "scale " + j);
                assertEquals(Q4_KTensor.scaleMin(m, 0, j, 1), Q4_KTensor.at(Q4_KTensor.mins(lo, hi), j), "min " + j);
            }
        }
    }

    @Test
    void q6_K() {
        byte[] b = new byte[210];
        float d = 0.03125f;
        f16(b, 208, d);
        int[] sc = new int[16];
        for (int i = 0; i < 16; i++) { sc[i] = (i * 29) % 256 - 128; b[192 + i] = (byte) sc[i]; }
        int[] q = new int[256];
        for (int i = 0; i < 256; i++) q[i] = (i * 13 + 5) % 64;
        float[] want = new float[256];
        for (int h = 0; h < 2; h++) {
            for (int l = 0; l < 32; l++) {
                int q1 = q[128 * h + l], q2 = q[128 * h + l + 32], q3 = q[128 * h + l + 64], q4 = q[128 * h + l + 96];
                b[64 * h + l] = (byte) ((q1 & 15) | ((q3 & 15) << 4));
                b[64 * h + l + 32] = (byte) ((q2 & 15) | ((q4 & 15) << 4));
                b[128 + 32 * h + l] = (byte) ((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
                int is = l / 16;
                want[128 * h + l] = d * sc[8 * h + is] * (q1 - 32);
                want[128 * h + l + 32] = d * sc[8 * h + is + 2] * (q2 - 32);
                want[128 * h + l + 64] = d * sc[8 * h + is + 4] * (q3 - 32);
                want[128 * h + l + 96] = d * sc[8 * h + is + 6] * (q4 - 32);
            }
        }
        check(GgmlType.Q6_K, b, want);
    }

    @Test
    void halfAndBfloatIncludingSubnormals() {
        float[] vals = {0f, -0f, 1f, -2.5f, 65504f, 6.1035156e-5f, 5.9604645e-8f, -3.0517578e-5f, 0.1f, 1000.5f, -7f, 3.14159f, 1e-6f, -1e-7f, 42f, 0.333f};
        byte[] h = new byte[vals.length * 2], bf = new byte[vals.length * 2];
        float[] wantH = new float[vals.length], wantB = new float[vals.length];
        for (int i = 0; i < vals.length; i++) {
            f16(h, 2 * i, vals[i]);
            wantH[i] = Float.float16ToFloat(Float.floatToFloat16(vals[i]));
            int bits = Float.floatToRawIntBits(vals[i]) >>> 16;
            bf[2 * i] = (byte) bits;
            bf[2 * i + 1] = (byte) (bits >> 8);
            wantB[i] = Float.intBitsToFloat(bits << 16);
        }
        check(GgmlType.F16, h, wantH);
        check(GgmlType.BF16, bf, wantB);
    }

    /** Element access, dequantisation and the vectorised dot product (vs. the expected floats) all agree. */
    static void check(GgmlType type, byte[] bytes, float[] want) {
        FloatTensor t = FloatTensor.of(type, MemorySegment.ofArray(bytes), want.length);
        float[] got = new float[want.length];
        t.copyTo(0, got, 0, want.length);
        for (int i = 0; i < want.length; i++) {
            assertEquals(want[i], t.getFloat(i), Math.abs(want[i]) * 1e-6 + 1e-12, type + " element " + i);
            assertEquals(want[i], got[i], Math.abs(want[i]) * 1e-6 + 1e-12, type + " copy " + i);
        }
        SplittableRandom r = new SplittableRandom(1);
        float[] x = new float[want.length];
        double ref = 0, mag = 0;
        for (int i = 0; i < x.length; i++) { x[i] = (float) r.nextGaussian(); ref += (double) want[i] * x[i]; mag += Math.abs(want[i] * x[i]); }
        assertEquals(ref, t.dot(0, x, 0, want.length), 1e-5 * mag + 1e-9, type + " dot");
    }

    /**
     * Decode's re-laid copies for integer products (Q4_0; Q4_K with float scales and mins; Q6_K as bytes with float
     * scales): every element and every dequantised run is the same float as the stored block gives (not merely
     * close), their products agree with a double reference over the x they multiply to float rounding, and the copy
     * really is the re-laid one.
     */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q4_0", "Q4_K", "Q6_K"})
    void decodeCopiesHoldTheSameWeights(GgmlType type) {
        SplittableRandom r = new SplittableRandom(12);
        int rows = 37, cols = 1280;
        long bytes = type.byteSize((long) rows * cols);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment seg = arena.allocate(bytes + 1).asSlice(1);
            for (long i = 0; i < bytes; i++) seg.set(ValueLayout.JAVA_BYTE, i, (byte) r.nextInt(256));
            fixScales(type, seg, bytes, r);
            FloatTensor stored = FloatTensor.of(type, seg, (long) rows * cols), relaid = DecodeLayout.of(stored, rows, cols);
            assertEquals(switch (type) { case Q4_0 -> Q4_0Int16.class; case Q4_K -> Q4_KInt16.class; default -> Q6_KInt16.class; }, relaid.getClass());
            assertEquals((long) rows * cols / 128 * switch (type) { case Q4_0 -> 80; case Q4_K -> 96; default -> 160; }, relaid.segment().byteSize());
            for (long i = 0; i < (long) rows * cols; i++) {
                assertEquals(Float.floatToIntBits(stored.getFloat(i)), Float.floatToIntBits(relaid.getFloat(i)), "element " + i);
            }
            float[] want = new float[cols], got = new float[cols];
            for (int row = 0; row < rows; row += 6) {
                for (int c = 0; c < cols; c++) want[c] = stored.getFloat((long) row * cols + c);
                relaid.copyTo((long) row * cols, got, 0, cols);
                assertArrayEquals(want, got, "row " + row);
            }
            float[] x = new float[cols], b = new float[rows];
            for (int i = 0; i < cols; i++) x[i] = (float) r.nextGaussian();
            relaid.matvec(x, 0, b, 0, rows, cols);
            float[] xm = multipliedX(relaid, x, 0, cols);
            for (int row = 0; row < rows; row++) {
                double ref = 0, mag = 0;
                for (int c = 0; c < cols; c++) { double p = product(stored, (long) row * cols + c, x[c], xm[c]); ref += p; mag += Math.abs(p); }
                assertEquals(ref, b[row], 1e-5 * mag + 1e-6, "row " + row);
            }
        }
    }

    /**
     * The integer kernels (Q4_0, Q4_K, Q6_K) against the exact product with x itself: rounding x to int8 moves each value by
     * at most half a step (max|x| / 254 in its block of 32), and each moved value is multiplied by the integer part of
     * its weight (Q4_0, Q6_K: the whole weight; Q4_K: scale·q, the min being applied to x's exact sums), so the result is
     * off by at most Σ |that part| times half a step, plus float rounding. Also: a block of zeros and one with a
     * large outlier, the same bits on 1, 2 and 3 threads and for a row in a batch of 3 as alone, and Q4_0 rows that are
     * no multiple of a group left stored.
     */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q4_0", "Q4_K", "Q6_K"})
    void integerProductsStayWithinHalfAStepOfX(GgmlType type) {
        SplittableRandom r = new SplittableRandom(31);
        int rows = 45, cols = 1280;
        long bytes = type.byteSize((long) rows * cols);
        int before = Parallel.threads();
        try (Arena arena = Arena.ofShared()) {
            MemorySegment seg = arena.allocate(bytes + 1).asSlice(1);
            for (long i = 0; i < bytes; i++) seg.set(ValueLayout.JAVA_BYTE, i, (byte) r.nextInt(256));
            fixScales(type, seg, bytes, r);
            FloatTensor stored = FloatTensor.of(type, seg, (long) rows * cols), relaid = DecodeLayout.of(stored, rows, cols);
            assertEquals(switch (type) { case Q4_0 -> Q4_0Int16.class; case Q4_K -> Q4_KInt16.class; default -> Q6_KInt16.class; }, relaid.getClass());
            float[] x = new float[cols];
            for (int i = 0; i < cols; i++) x[i] = (float) r.nextGaussian();
            java.util.Arrays.fill(x, 64, 96, 0f); // a block of zeros (scale 0)
            x[200] = 300f;                         // an outlier that coarsens its block's steps
            float[][] out = new float[3][rows];
            for (int threads = 1; threads <= 3; threads++) {
                Parallel.setThreads(threads);
                relaid.matvec(x, 0, out[threads - 1], 0, rows, cols);
            }
            for (int row = 0; row < rows; row++) {
                double ref = 0, mag = 0, bound = 0;
                for (int b = 0; b < cols; b += 32) {
                    double max = 0, sumW = 0;
                    long e0 = (long) row * cols + b;
                    // Q4_K: the min of sub-block b / 32 (weight = scale·q - min)
                    double min = type != GgmlType.Q4_K ? 0 : Float.float16ToFloat(seg.get(Q8_0Tensor.SHORT, e0 / 256 * 144 + 2))
                            * Q4_KTensor.scaleMin(seg, e0 / 256 * 144 + 4, (int) (e0 % 256 / 32), 1);
                    for (int c = b; c < b + 32; c++) {
                        double w = stored.getFloat((long) row * cols + c);
                        ref += w * x[c];
                        mag += Math.abs(w * x[c]);
                        sumW += Math.abs(w + min);
                        max = Math.max(max, Math.abs(x[c]));
                    }
                    bound += sumW * max / 254;
                }
                assertEquals(ref, out[0][row], bound * 1.001 + 1e-5 * mag, "row " + row);
                assertNotEquals(0f, out[0][row] - (float) ref, "row " + row + ": x is rounded, not multiplied as floats");
                assertEquals(Float.floatToIntBits(out[0][row]), Float.floatToIntBits(out[1][row]), "2 threads, row " + row);
                assertEquals(Float.floatToIntBits(out[0][row]), Float.floatToIntBits(out[2][row]), "3 threads, row " + row);
            }
            // a batch below the GEMM's: each row the bits a lone row gets
            float[] three = new float[3 * cols], batched = new float[3 * rows], lone = new float[rows];
            for (int i = 0; i < three.length; i++) three[i] = (float) r.nextGaussian();
            relaid.matmul(three, cols, batched, rows, 3, rows, cols);
            for (int b = 0; b < 3; b++) {
                relaid.matvec(three, b * cols, lone, 0, rows, cols);
                for (int row = 0; row < rows; row++) assertEquals(Float.floatToIntBits(lone[row]), Float.floatToIntBits(batched[b * rows + row]), "batch row " + b + ", row " + row);
            }
            if (type == GgmlType.Q4_0) {
                FloatTensor odd = FloatTensor.of(type, seg, 9L * 160);
                assertSame(odd, DecodeLayout.of(odd, 9, 160), "rows of 160 are no whole groups of 128: decode keeps them as stored");
            }
        } finally {
            Parallel.setThreads(before);
        }
    }

    /** Random stored bytes of each type, several shapes, heap and off-heap: matvec and matmul equal a double reference. */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q6_K"})
    void productsMatchReference(GgmlType type) {
        assertTrue(OuterGemm.MIN_BATCH <= 16, "batches 16, 17 and 40 below must exercise the outer-product GEMM");
        SplittableRandom r = new SplittableRandom(type.ordinal());
        // 2100 rows: a thread's chunk of tiles spans more than one panel of the outer-product GEMM (8-row tiles, 8
        // chunks per loop with 2 threads, 32 tiles per panel)
        for (int[] shape : new int[][]{{7, 256}, {33, 512}, {5, 768}, {9, 1536}, {2100, 512}}) {
            int rows = shape[0], cols = shape[1];
            long bytes = type.byteSize((long) rows * cols);
            boolean heap = rows % 2 == 1 && cols != 768; // some shapes from an unaligned heap array, the rest off-heap
            try (Arena arena = Arena.ofShared()) {
                MemorySegment seg = heap ? MemorySegment.ofArray(new byte[(int) bytes + 5]).asSlice(5)
                        : arena.allocate(bytes + 3).asSlice(3); // deliberately unaligned
                for (long i = 0; i < bytes; i++) seg.set(ValueLayout.JAVA_BYTE, i, (byte) r.nextInt(256));
                fixScales(type, seg, bytes, r);
                FloatTensor stored = FloatTensor.of(type, seg, (long) rows * cols);
                // the stored layout and decode's copy (DecodeLayout: k-quants re-laid, others as stored)
                for (FloatTensor t : List.of(stored, DecodeLayout.of(stored, rows, cols))) {
                    // even and odd batches (the dot-product kernels block batch rows in pairs and fours); from 16 rows up the
                    // outer-product GEMM, with batches that fill whole, one-and-a-half and two-and-a-half vectors
                    for (int batch : new int[]{2, 5, 6, 16, 17, 40}) {
                        float[] x = new float[batch * cols + 3];
                        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
                        int xOff = 3; // matvec from an offset into x
                        float[] mv = new float[rows + 1], mm = new float[batch * (rows + 1)];
                        t.matvec(x, xOff, mv, 1, rows, cols);
                        t.matmul(x, cols, mm, rows + 1, batch, rows, cols); // output stride wider than rows
                        // the integer kernels multiply x rounded to int8 in a matvec and in batches below the GEMM's
                        float[][] xm = new float[batch + 1][];
                        for (int b = 0; b <= batch; b++) {
                            int xo = b < batch ? b * cols : xOff;
                            xm[b] = b == batch || batch < FloatTensor.GEMM_ROWS ? multipliedX(t, x, xo, cols) : java.util.Arrays.copyOfRange(x, xo, xo + cols);
                        }
                        for (int row = 0; row < rows; row++) {
                            for (int b = 0; b <= batch; b++) {
                                int xo = b < batch ? b * cols : xOff;
                                double ref = 0, mag = 0;
                                for (int c = 0; c < cols; c++) {
                                    double p = product(stored, (long) row * cols + c, x[xo + c], xm[b][c]);
                                    ref += p;
                                    mag += Math.abs(p);
                                }
                                String where = t.getClass().getSimpleName() + " " + rows + "x" + cols + " batch " + batch + " row " + row;
                                if (b < batch) assertEquals(ref, mm[b * (rows + 1) + row], 1e-5 * mag + 1e-6, where + " matmul b " + b);
                                else assertEquals(ref, mv[1 + row], 1e-5 * mag + 1e-6, where + " matvec");
                            }
                        }
                    }
                }
            }
        }
    }

    /** Float rows whose length is no multiple of the vector width (the scalar tails of the kernels). */
    /**
     * Decode's fused products (q/k/v, gate/up: one parallel loop over the rows of several matrices) give each matrix
     * exactly what its own matvec gives, with mixed types (a Q4_K_M file mixes Q4_K and Q6_K), two matrices of one
     * type sharing its rearranged-input scratch (decode's Q4_0 and Q4_K copies share one int8 input, prepared once),
     * and sizes that put chunk boundaries inside each matrix.
     */
    @Test
    void fusedMatvecsEqualSeparateOnes() {
        SplittableRandom r = new SplittableRandom(44);
        int cols = 512;
        GgmlType[][] combos = {{GgmlType.Q4_K, GgmlType.Q4_K, GgmlType.Q6_K}, {GgmlType.Q8_0, GgmlType.F16, GgmlType.Q4_0}, {GgmlType.Q6_K, GgmlType.Q4_K, GgmlType.Q4_K},
                {GgmlType.Q4_0, GgmlType.Q6_K, GgmlType.Q4_K}};
        int[] rows = {300, 65, 129};
        float[] x = new float[cols];
        for (int i = 0; i < cols; i++) x[i] = (float) r.nextGaussian();
        try (Arena arena = Arena.ofShared()) {
            for (boolean relay : new boolean[]{false, true}) for (GgmlType[] combo : combos) {
                FloatTensor[] t = new FloatTensor[3];
                float[][] want = new float[3][], got = new float[3][];
                for (int m = 0; m < 3; m++) {
                    long bytes = combo[m].byteSize((long) rows[m] * cols);
                    MemorySegment seg = arena.allocate(bytes);
                    for (long i = 0; i < bytes; i++) seg.set(ValueLayout.JAVA_BYTE, i, (byte) r.nextInt(256));
                    fixScales(combo[m], seg, bytes, r);
                    t[m] = FloatTensor.of(combo[m], seg, (long) rows[m] * cols);
                    if (relay) t[m] = DecodeLayout.of(t[m], rows[m], cols); // Q4_0 and Q4_K copies share the int8 input's scratch
                    want[m] = new float[rows[m]];
                    got[m] = new float[rows[m]];
                    t[m].matvec(x, 0, want[m], 0, rows[m], cols);
                }
                FloatTensor.matvec3(x, cols, t[0], got[0], rows[0], t[1], got[1], rows[1], t[2], got[2], rows[2]);
                for (int m = 0; m < 3; m++) assertArrayEquals(want[m], got[m], java.util.Arrays.toString(combo) + " matrix " + m);
                float[] g0 = new float[rows[0]], g1 = new float[rows[1]];
                FloatTensor.matvec2(x, cols, t[0], g0, rows[0], t[1], g1, rows[1]);
                assertArrayEquals(want[0], g0);
                assertArrayEquals(want[1], g1);
            }
        }
    }

    /**
     * Long-row matrices copied into column panels read back the same elements and give the same products (to float
     * rounding: the panels are summed separately) for matvec, batched matmul (both kernels) and single dots that
     * cross a panel boundary, with a last panel narrower than the rest.
     */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q6_K"})
    void columnPanelsGiveTheSameProducts(GgmlType type) {
        SplittableRandom r = new SplittableRandom(90 + type.ordinal());
        int rows = 67, cols = 2 * ColumnPanels.PANEL + 512;
        long bytes = type.byteSize((long) rows * cols);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment seg = arena.allocate(bytes);
            for (long i = 0; i < bytes; i++) seg.set(ValueLayout.JAVA_BYTE, i, (byte) r.nextInt(256));
            fixScales(type, seg, bytes, r);
            FloatTensor t = FloatTensor.of(type, seg, (long) rows * cols);
            FloatTensor plain = ColumnPanels.of(t, rows, cols), decode = DecodeLayout.of(t, rows, cols);
            if (type == GgmlType.Q4_K) assertInstanceOf(Q4_KInt16.class, ((ColumnPanels) decode).panels(), "decode's Q4_K panels are re-laid");
            if (type == GgmlType.Q6_K) assertInstanceOf(Q6_KInt16.class, ((ColumnPanels) decode).panels(), "decode's Q6_K panels are re-laid");
            if (type == GgmlType.Q4_0) assertInstanceOf(Q4_0Int16.class, ((ColumnPanels) decode).panels(), "decode's Q4_0 panels are re-laid");
            for (FloatTensor p : List.of(plain, decode)) {
                assertInstanceOf(ColumnPanels.class, p);
                for (int k = 0; k < 2000; k++) {
                    long i = r.nextLong((long) rows * cols);
                    assertEquals(Float.floatToIntBits(t.getFloat(i)), Float.floatToIntBits(p.getFloat(i)), "element " + i);
                }
                int batch = 17;
                float[] x = new float[batch * cols];
                for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
                for (int b : new int[]{1, 3, 17}) {
                    float[] want = new float[b * rows], got = new float[b * rows];
                    t.matmul(x, cols, want, rows, b, rows, cols);
                    p.matmul(x, cols, got, rows, b, rows, cols);
                    for (int bi = 0; bi < b; bi++) {
                        float[] xm = multipliedX(p, x, bi * cols, cols); // what the panels' integer kernels multiply (batches below the GEMM's)
                        for (int row = 0; row < rows; row++) {
                            double ref = 0, mag = 0, refP = 0, magP = 0;
                            for (int c = 0; c < cols; c++) {
                                double prod = (double) t.getFloat((long) row * cols + c) * x[bi * cols + c];
                                ref += prod;
                                mag += Math.abs(prod);
                                double prodP = b < FloatTensor.GEMM_ROWS ? product(t, (long) row * cols + c, x[bi * cols + c], xm[c]) : prod;
                                refP += prodP;
                                magP += Math.abs(prodP);
                            }
                            int i = bi * rows + row;
                            assertEquals(ref, want[i], 1e-5 * mag + 1e-6, type + " row-major batch " + b + " at " + i);
                            assertEquals(refP, got[i], 1e-5 * magP + 1e-6, type + " panels batch " + b + " at " + i);
                        }
                    }
                }
                long off = 5L * cols + ColumnPanels.PANEL - 256; // a run across the first panel boundary
                float[] xm = multipliedX(p, x, 7, 512);
                double ref = 0, mag = 0;
                for (int c = 0; c < 512; c++) { double prod = product(t, off + c, x[7 + c], xm[c]); ref += prod; mag += Math.abs(prod); }
                assertEquals(ref, p.dot(off, x, 7, 512), 1e-5 * mag + 1e-6);
            }
        }
    }

    /**
     * The outer-product GEMM sums each output as one chain over the columns in order, so a row's result is the same
     * bits whatever the batch it is computed in (prefill chunks of any size give the same logits), across several
     * column slices and a partly filled packed block.
     */
    @Test
    void outerProductResultsDoNotDependOnTheBatch() {
        int rows = 40, cols = 3 * OuterGemm.KC + 256;
        SplittableRandom r = new SplittableRandom(5);
        float[] w = new float[rows * cols], x = new float[70 * cols];
        for (int i = 0; i < w.length; i++) w[i] = (float) r.nextGaussian();
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
        FloatTensor t = F32Tensor.wrap(w);
        float[] big = new float[70 * rows], small = new float[17 * rows];
        t.matmul(x, cols, big, rows, 70, rows, cols);
        t.matmul(x, cols, small, rows, 17, rows, cols);
        for (int i = 0; i < small.length; i++) assertEquals(Float.floatToIntBits(big[i]), Float.floatToIntBits(small[i]), "element " + i);
    }

    @Test
    void f32OddRowLength() {
        int rows = 6, cols = 37, batch = 3;
        SplittableRandom r = new SplittableRandom(11);
        float[] w = new float[rows * cols], x = new float[batch * cols];
        for (int i = 0; i < w.length; i++) w[i] = (float) r.nextGaussian();
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
        FloatTensor t = F32Tensor.wrap(w);
        float[] mm = new float[batch * rows], mv = new float[rows];
        t.matmul(x, cols, mm, rows, batch, rows, cols);
        t.matvec(x, cols, mv, 0, rows, cols);
        for (int b = 0; b < batch; b++) {
            for (int row = 0; row < rows; row++) {
                double ref = 0;
                for (int c = 0; c < cols; c++) ref += (double) w[row * cols + c] * x[b * cols + c];
                assertEquals(ref, mm[b * rows + row], 1e-4, "matmul " + b + " " + row);
                if (b == 1) assertEquals(ref, mv[row], 1e-4, "matvec " + row);
            }
        }
    }

    /**
     * x[off, off + n) as a tensor's single-row products multiply it: for the integer kernels ({@link Q4_0Int16}, {@link Q4_KInt16}, {@link Q6_KInt16}) each
     * block of 32 rounded to the nearest multiple of d = max|x| / 127, ties to even (llama.cpp's Q8_0 rule, written out here
     * independently of {@link Int8Input}); as it is for the others.
     */
    static float[] multipliedX(FloatTensor t, float[] x, int off, int n) {
        float[] y = java.util.Arrays.copyOfRange(x, off, off + n);
        FloatTensor inner = t instanceof ColumnPanels p ? p.panels() : t;
        if (!(inner instanceof Q4_0Int16 || inner instanceof Q4_KInt16 || inner instanceof Q6_KInt16)) return y;
        for (int b = 0; b < n; b += 32) {
            float max = 0f;
            for (int i = b; i < b + 32; i++) max = Math.max(max, Math.abs(y[i]));
            float d = max / 127f, inv = max == 0f ? 0f : 127f / max;
            for (int i = b; i < b + 32; i++) y[i] = (float) Math.rint(y[i] * inv) * d;
        }
        return y;
    }

    /**
     * Weight i of a stored tensor times x as a single-row product multiplies it: x rounded ({@code xm}, from
     * {@link #multipliedX}) except for the part of Q4_K's weight (scale·q - min) that the integer kernel applies to
     * x's exact block sums, the min.
     */
    static double product(FloatTensor stored, long i, float x, float xm) {
        double w = stored.getFloat(i);
        if (stored.type() != GgmlType.Q4_K) return w * xm;
        MemorySegment seg = stored.segment();
        long blk = i / 256 * 144;
        double min = Float.float16ToFloat(seg.get(Q8_0Tensor.SHORT, blk + 2)) * Q4_KTensor.scaleMin(seg, blk + 4, (int) (i % 256 / 32), 1);
        return (w + min) * xm - min * x;
    }

    /** Random bytes can make f16 scales inf/NaN; give every scale a sane random value. */
    static void fixScales(GgmlType type, MemorySegment seg, long bytes, SplittableRandom r) {
        ValueLayout.OfShort S = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);
        switch (type) {
            case F16 -> { for (long i = 0; i < bytes; i += 2) seg.set(S, i, Float.floatToFloat16((float) r.nextGaussian())); }
            case BF16 -> { for (long i = 0; i < bytes; i += 2) seg.set(S, i, (short) (Float.floatToRawIntBits((float) r.nextGaussian()) >>> 16)); }
            case F32 -> { for (long i = 0; i < bytes; i += 4) seg.set(ValueLayout.JAVA_FLOAT_UNALIGNED, i, (float) r.nextGaussian()); }
            case Q8_0, Q4_0 -> { for (long i = 0; i < bytes; i += type.typeSize) seg.set(S, i, Float.floatToFloat16(r.nextFloat() * 0.1f)); }
            case Q4_K -> { for (long i = 0; i < bytes; i += 144) { seg.set(S, i, Float.floatToFloat16(r.nextFloat() * 0.01f)); seg.set(S, i + 2, Float.floatToFloat16(r.nextFloat() * 0.01f)); } }
            case Q6_K -> { for (long i = 0; i < bytes; i += 210) seg.set(S, i + 208, Float.floatToFloat16(r.nextFloat() * 0.01f)); }
            default -> throw new IllegalStateException();
        }
    }
}
