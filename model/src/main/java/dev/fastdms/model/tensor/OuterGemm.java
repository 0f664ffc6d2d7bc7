package dev.fastdms.model.tensor;

import dev.fastdms.simd.Lanes;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Batched products for prefill by outer products: vectors run along the batch, not along the dot product. x is packed
 * once per call in blocks of {@link #NB} batch rows, each block stored column by column ({@code xp[block][k][NB]}, the
 * batch padded with zeros), so the kernel reads it at a constant stride and in order. Each thread dequantises a tile
 * of {@link #R} weight rows, {@link #KC} columns at a time, into L1 (the type's own {@code copyTo}) and then, per
 * column k, multiplies each row's weight (one broadcast) with the block's two vectors of x. Per column a block of R
 * rows x 2 vectors does 2R FMAs for 2 vector loads and R broadcasts, all accumulators stay in registers for the whole
 * tile, and nothing needs a horizontal sum: every output is one FMA chain over k in order, so results do not depend
 * on the batch size or the vector width. The dot-product kernels ({@link FloatTensor#matmul}'s other paths) convert
 * every weight once per four batch rows; here a weight is converted once per call whatever the batch, which pays
 * from {@link #MIN_BATCH} rows up.
 */
final class OuterGemm {
    static final VectorSpecies<Float> F = Lanes.WIDE;
    static final int L = F.length();
    /** Batch rows per packed block: the kernel's two vectors. */
    static final int NB = 2 * L;
    /**
     * Weight rows per tile (8 with 512-bit vectors: 16 accumulators fit AVX-512's 32 registers, +10-15% at batch 64
     * over 4 rows; 4 with 256-bit ones: under -XX:UseAVX=2 the 8-row block ran ~25% slower than the 4-row one, its
     * accumulators spilling from 16 registers) and columns dequantised at a time (a multiple of every block size:
     * 256; 512 ran a few percent faster than 256 and 128, see docs/perf.md).
     */
    static final int R = L == 16 ? 8 : 4, KC = 512;
    /** Tiles whose accumulators are kept while the columns are swept (32 tiles x 8 rows x 64 batch rows: 64 KiB). */
    static final int PANEL = 32;
    /** Batches from this size up take this path (measured: see {@link FloatTensor#matmul}). */
    static final int MIN_BATCH = 16;

    private OuterGemm() {}

    private static final ThreadLocal<float[][]> SCRATCH = ThreadLocal.withInitial(() -> new float[][]{new float[R * KC], new float[0]});
    private static final ThreadLocal<float[]> PACKED = ThreadLocal.withInitial(() -> new float[0]);

    /** out[b*outStride + r] = row r of t · x[b*xStride ..] for b < batch, r < rows (rows of {@code cols} elements). */
    static void matmul(FloatTensor t, float[] x, int xStride, float[] out, int outStride, int batch, int rows, int cols) {
        int blocks = (batch + NB - 1) / NB, bp = blocks * NB;
        float[] xp = PACKED.get();
        if (xp.length < cols * bp) { xp = new float[cols * bp]; PACKED.set(xp); }
        final float[] packed = xp;
        Parallel.forRange(cols, 256, (k0, k1) -> pack(x, xStride, batch, blocks, cols, k0, k1, packed));
        int tiles = (rows + R - 1) / R;
        Parallel.forRange(tiles, 1, (lo, hi) -> {
            float[][] s = SCRATCH.get();
            float[] w = s[0];
            int per = R * bp; // accumulators of one tile
            if (s[1].length < PANEL * per) s[1] = new float[PANEL * per];
            float[] acc = s[1];
            for (int p0 = lo; p0 < hi; p0 += PANEL) {
                int p1 = Math.min(hi, p0 + PANEL);
                // columns outer, the panel's tiles inner: a KC-column slice of the packed x stays in cache for all of
                // them, and the panel's accumulators stay in L2
                for (int kc = 0; kc < cols; kc += KC) {
                    int kn = Math.min(KC, cols - kc);
                    for (int tile = p0; tile < p1; tile++) {
                        int r0 = tile * R, nr = Math.min(R, rows - r0), a = (tile - p0) * per;
                        for (int i = 0; i < R; i++) {
                            if (i < nr) t.copyTo((long) (r0 + i) * cols + kc, w, i * KC, kn);
                            else java.util.Arrays.fill(w, i * KC, i * KC + kn, 0f);
                        }
                        int touched = 0, next = tile + 1 < p1 ? r0 + R : -1;
                        for (int i = 0; next >= 0 && i < R && next + i < rows; i++) touched += t.touchRange((long) (next + i) * cols + kc, kn);
                        FloatTensor.keep(touched);
                        for (int jb = 0; jb < blocks; jb++) {
                            int xo = (jb * cols + kc) * NB, j = a + jb * NB;
                            if (R == 8) block8x2(w, packed, xo, kn, acc, j, bp, kc == 0);
                            else block4x2(w, packed, xo, kn, acc, j, bp, kc == 0);
                        }
                    }
                }
                // batch rows outer: each writes the panel's rows as one contiguous run of out (rows of one batch
                // entry are far apart in out, and a walk down a column of out missed the TLB on every store)
                int rEnd = Math.min(rows, p1 * R);
                for (int b = 0; b < batch; b++) {
                    int o = b * outStride;
                    for (int r = p0 * R; r < rEnd; r++) out[o + r] = acc[(r - p0 * R) * bp + b]; // per = R * bp
                }
            }
        });
    }

    /** Columns [k0, k1) of x into the packed layout: xp[(block*cols + k)*NB + lane] = x[(block*NB + lane)*xStride + k]. */
    private static void pack(float[] x, int xStride, int batch, int blocks, int cols, int k0, int k1, float[] xp) {
        for (int jb = 0; jb < blocks; jb++) {
            for (int lane = 0; lane < NB; lane++) {
                int b = jb * NB + lane, o = jb * cols * NB + lane;
                if (b < batch) {
                    int xo = b * xStride;
                    for (int k = k0; k < k1; k++) xp[o + k * NB] = x[xo + k];
                } else {
                    for (int k = k0; k < k1; k++) xp[o + k * NB] = 0f;
                }
            }
        }
    }

    /**
     * acc[j + i*bp ..] (4 rows x the NB batch entries of one packed block) = or += Σ_{k < kn} w[i*KC + k] · xp[xo +
     * k*NB ..]: xo is the block's first column of this slice, j the block's place in this thread's accumulators.
     */
    private static void block4x2(float[] w, float[] xp, int xo, int kn, float[] acc, int j, int bp, boolean first) {
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
            int o = xo + k * NB;
            FloatVector x0 = FloatVector.fromArray(F, xp, o), x1 = FloatVector.fromArray(F, xp, o + L);
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

    /** As {@link #block4x2} for 8 rows (16 accumulators: AVX-512's 32 registers hold them with room to spare). */
    private static void block8x2(float[] w, float[] xp, int xo, int kn, float[] acc, int j, int bp, boolean first) {
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
            int o = xo + k * NB;
            FloatVector x0 = FloatVector.fromArray(F, xp, o), x1 = FloatVector.fromArray(F, xp, o + L);
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
