package dev.fastdms.model.tensor;

import dev.fastdms.simd.Lanes;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Batched products for prefill by outer products: vectors run along the batch, not along the dot product. x is
 * transposed once per call ({@code xt[k][b]}, the batch padded to whole vectors); each thread dequantises a tile of
 * {@link #R} weight rows, {@link #KC} columns at a time, into L1 (the type's own {@code copyTo}) and then, per column k,
 * multiplies each row's weight (one broadcast) with a vector of x^T's batch entries. Per column a block of R rows x 2
 * vectors does 2R FMAs for 2 vector loads and R broadcasts, all accumulators stay in registers for the whole tile, and
 * nothing needs a horizontal sum: results come out in a fixed order, independent of the vector width's reductions.
 * The dot-product kernels ({@link FloatTensor#matmul}'s other paths) convert every weight once per four batch rows;
 * here a weight is converted once per call whatever the batch, which pays from {@link #MIN_BATCH} rows up.
 */
final class OuterGemm {
    static final VectorSpecies<Float> F = Lanes.WIDE;
    static final int L = F.length();
    /**
     * Weight rows per tile (8 with 512-bit vectors: 16 accumulators fit AVX-512's 32 registers, +10-15% at batch 64
     * over 4 rows; 4 with 256-bit ones: under -XX:UseAVX=2 the 8-row block ran ~25% slower than the 4-row one, its
     * accumulators spilling from 16 registers) and columns dequantised at a time (a multiple of every block size: 256).
     */
    static final int R = L == 16 ? 8 : 4, KC = 256;
    /** Tiles whose accumulators are kept while the columns are swept (32 tiles x 8 rows x 64 batch rows: 64 KiB). */
    static final int PANEL = 32;
    /** Batches from this size up take this path (measured: see {@link FloatTensor#matmul}). */
    static final int MIN_BATCH = 16;

    private OuterGemm() {}

    private static final ThreadLocal<float[][]> SCRATCH = ThreadLocal.withInitial(() -> new float[][]{new float[R * KC], new float[0]});
    private static final ThreadLocal<float[]> XT = ThreadLocal.withInitial(() -> new float[0]);

    /** out[b*outStride + r] = row r of t · x[b*xStride ..] for b < batch, r < rows (rows of {@code cols} elements). */
    static void matmul(FloatTensor t, float[] x, int xStride, float[] out, int outStride, int batch, int rows, int cols) {
        int bp = (batch + L - 1) / L * L;
        float[] xt = XT.get();
        if (xt.length < cols * bp) { xt = new float[cols * bp]; XT.set(xt); }
        for (int k = 0; k < cols; k++) {
            int o = k * bp;
            for (int b = 0; b < batch; b++) xt[o + b] = x[b * xStride + k];
            for (int b = batch; b < bp; b++) xt[o + b] = 0f;
        }
        final float[] xT = xt;
        int tiles = (rows + R - 1) / R;
        Parallel.forRange(tiles, 1, (lo, hi) -> {
            float[][] s = SCRATCH.get();
            float[] w = s[0];
            int per = R * bp; // accumulators of one tile
            if (s[1].length < PANEL * per) s[1] = new float[PANEL * per];
            float[] acc = s[1];
            for (int p0 = lo; p0 < hi; p0 += PANEL) {
                int p1 = Math.min(hi, p0 + PANEL);
                // columns outer, the panel's tiles inner: a KC-column slice of x^T stays in cache for all of them,
                // and the panel's accumulators stay in L2
                for (int kc = 0; kc < cols; kc += KC) {
                    int kn = Math.min(KC, cols - kc);
                    for (int tile = p0; tile < p1; tile++) {
                        int r0 = tile * R, nr = Math.min(R, rows - r0), a = (tile - p0) * per;
                        for (int i = 0; i < R; i++) {
                            if (i < nr) t.copyTo((long) (r0 + i) * cols + kc, w, i * KC, kn);
                            else java.util.Arrays.fill(w, i * KC, i * KC + kn, 0f);
                        }
                        int j = 0;
                        for (; j + 2 * L <= bp; j += 2 * L) {
                            if (R == 8) block8x2(w, xT, bp, kc * bp + j, kn, acc, a + j, kc == 0);
                            else block2(w, xT, bp, kc * bp + j, kn, acc, a + j, kc == 0);
                        }
                        // a last single vector of batch entries, four rows at a time
                        if (j < bp) for (int i = 0; i < R; i += 4) block1(w, i * KC, xT, bp, kc * bp + j, kn, acc, a + i * bp + j, kc == 0);
                    }
                }
                for (int tile = p0; tile < p1; tile++) {
                    int r0 = tile * R, nr = Math.min(R, rows - r0), a = (tile - p0) * per;
                    for (int i = 0; i < nr; i++) {
                        for (int b = 0; b < batch; b++) out[b * outStride + r0 + i] = acc[a + i * bp + b];
                    }
                }
            }
        });
    }

    /**
     * acc[j + i*bp ..] (4 rows x 2 vectors of batch entries) = or += Σ_{k < kn} w[i*KC + k] · xt[x0o + k*bp ..]: x0o
     * is the first column's batch entries in x^T, j the block's place in this thread's accumulators.
     */
    private static void block2(float[] w, float[] xt, int bp, int x0o, int kn, float[] acc, int j, boolean first) {
        FloatVector c00, c01, c10, c11, c20, c21, c30, c31;
        if (first) {
            c00 = FloatVector.zero(F); c01 = c00; c10 = c00; c11 = c00; c20 = c00; c21 = c00; c30 = c00; c31 = c00;
        } else {
            c00 = FloatVector.fromArray(F, acc, j); c01 = FloatVector.fromArray(F, acc, j + L);
            c10 = FloatVector.fromArray(F, acc, bp + j); c11 = FloatVector.fromArray(F, acc, bp + j + L);
            c20 = FloatVector.fromArray(F, acc, 2 * bp + j); c21 = FloatVector.fromArray(F, acc, 2 * bp + j + L);
            c30 = FloatVector.fromArray(F, acc, 3 * bp + j); c31 = FloatVector.fromArray(F, acc, 3 * bp + j + L);
        }
        for (int k = 0; k < kn; k++) {
            int xo = x0o + k * bp;
            FloatVector x0 = FloatVector.fromArray(F, xt, xo), x1 = FloatVector.fromArray(F, xt, xo + L);
            FloatVector wv = FloatVector.broadcast(F, w[k]);
            c00 = x0.fma(wv, c00); c01 = x1.fma(wv, c01);
            wv = FloatVector.broadcast(F, w[KC + k]);
            c10 = x0.fma(wv, c10); c11 = x1.fma(wv, c11);
            wv = FloatVector.broadcast(F, w[2 * KC + k]);
            c20 = x0.fma(wv, c20); c21 = x1.fma(wv, c21);
            wv = FloatVector.broadcast(F, w[3 * KC + k]);
            c30 = x0.fma(wv, c30); c31 = x1.fma(wv, c31);
        }
        c00.intoArray(acc, j); c01.intoArray(acc, j + L);
        c10.intoArray(acc, bp + j); c11.intoArray(acc, bp + j + L);
        c20.intoArray(acc, 2 * bp + j); c21.intoArray(acc, 2 * bp + j + L);
        c30.intoArray(acc, 3 * bp + j); c31.intoArray(acc, 3 * bp + j + L);
    }

    /** As {@link #block2} for one vector of batch entries, rows from w[wo ..]. */
    private static void block1(float[] w, int wo, float[] xt, int bp, int x0o, int kn, float[] acc, int j, boolean first) {
        FloatVector c0, c1, c2, c3;
        if (first) {
            c0 = FloatVector.zero(F); c1 = c0; c2 = c0; c3 = c0;
        } else {
            c0 = FloatVector.fromArray(F, acc, j); c1 = FloatVector.fromArray(F, acc, bp + j);
            c2 = FloatVector.fromArray(F, acc, 2 * bp + j); c3 = FloatVector.fromArray(F, acc, 3 * bp + j);
        }
        for (int k = 0; k < kn; k++) {
            FloatVector x0 = FloatVector.fromArray(F, xt, x0o + k * bp);
            c0 = x0.fma(FloatVector.broadcast(F, w[wo + k]), c0);
            c1 = x0.fma(FloatVector.broadcast(F, w[wo + KC + k]), c1);
            c2 = x0.fma(FloatVector.broadcast(F, w[wo + 2 * KC + k]), c2);
            c3 = x0.fma(FloatVector.broadcast(F, w[wo + 3 * KC + k]), c3);
        }
        c0.intoArray(acc, j); c1.intoArray(acc, bp + j);
        c2.intoArray(acc, 2 * bp + j); c3.intoArray(acc, 3 * bp + j);
    }

    /** 8 rows x 2 vectors (16 accumulators: AVX-512's 32 registers hold them with room to spare). */
    private static void block8x2(float[] w, float[] xt, int bp, int x0o, int kn, float[] acc, int j, boolean first) {
        FloatVector c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71;
        if (first) {
            c00 = FloatVector.zero(F); c01 = c00; c10 = c00; c11 = c00; c20 = c00; c21 = c00; c30 = c00; c31 = c00;
            c40 = c00; c41 = c00; c50 = c00; c51 = c00; c60 = c00; c61 = c00; c70 = c00; c71 = c00;
        } else {
            c00 = FloatVector.fromArray(F, acc, j); c01 = FloatVector.fromArray(F, acc, j + L);
            c10 = FloatVector.fromArray(F, acc, bp + j); c11 = FloatVector.fromArray(F, acc, bp + j + L);
            c20 = FloatVector.fromArray(F, acc, 2 * bp + j); c21 = FloatVector.fromArray(F, acc, 2 * bp + j + L);
            c30 = FloatVector.fromArray(F, acc, 3 * bp + j); c31 = FloatVector.fromArray(F, acc, 3 * bp + j + L);
            c40 = FloatVector.fromArray(F, acc, 4 * bp + j); c41 = FloatVector.fromArray(F, acc, 4 * bp + j + L);
            c50 = FloatVector.fromArray(F, acc, 5 * bp + j); c51 = FloatVector.fromArray(F, acc, 5 * bp + j + L);
            c60 = FloatVector.fromArray(F, acc, 6 * bp + j); c61 = FloatVector.fromArray(F, acc, 6 * bp + j + L);
            c70 = FloatVector.fromArray(F, acc, 7 * bp + j); c71 = FloatVector.fromArray(F, acc, 7 * bp + j + L);
        }
        for (int k = 0; k < kn; k++) {
            int xo = x0o + k * bp;
            FloatVector x0 = FloatVector.fromArray(F, xt, xo), x1 = FloatVector.fromArray(F, xt, xo + L);
            FloatVector wv = FloatVector.broadcast(F, w[k]);
            c00 = x0.fma(wv, c00); c01 = x1.fma(wv, c01);
            wv = FloatVector.broadcast(F, w[KC + k]);
            c10 = x0.fma(wv, c10); c11 = x1.fma(wv, c11);
            wv = FloatVector.broadcast(F, w[2 * KC + k]);
            c20 = x0.fma(wv, c20); c21 = x1.fma(wv, c21);
            wv = FloatVector.broadcast(F, w[3 * KC + k]);
            c30 = x0.fma(wv, c30); c31 = x1.fma(wv, c31);
            wv = FloatVector.broadcast(F, w[4 * KC + k]);
            c40 = x0.fma(wv, c40); c41 = x1.fma(wv, c41);
            wv = FloatVector.broadcast(F, w[5 * KC + k]);
            c50 = x0.fma(wv, c50); c51 = x1.fma(wv, c51);
            wv = FloatVector.broadcast(F, w[6 * KC + k]);
            c60 = x0.fma(wv, c60); c61 = x1.fma(wv, c61);
            wv = FloatVector.broadcast(F, w[7 * KC + k]);
            c70 = x0.fma(wv, c70); c71 = x1.fma(wv, c71);
        }
        c00.intoArray(acc, j); c01.intoArray(acc, j + L);
        c10.intoArray(acc, bp + j); c11.intoArray(acc, bp + j + L);
        c20.intoArray(acc, 2 * bp + j); c21.intoArray(acc, 2 * bp + j + L);
        c30.intoArray(acc, 3 * bp + j); c31.intoArray(acc, 3 * bp + j + L);
        c40.intoArray(acc, 4 * bp + j); c41.intoArray(acc, 4 * bp + j + L);
        c50.intoArray(acc, 5 * bp + j); c51.intoArray(acc, 5 * bp + j + L);
        c60.intoArray(acc, 6 * bp + j); c61.intoArray(acc, 6 * bp + j + L);
        c70.intoArray(acc, 7 * bp + j); c71.intoArray(acc, 7 * bp + j + L);
    }
}
