package dev.fastdms.model.tensor;

import java.lang.foreign.MemorySegment;

/**
 * A read-only tensor of {@code size} logical float elements stored in some {@link GgmlType} inside a
 * {@link MemorySegment} (usually a slice of a memory-mapped model file). Subclasses per type implement element access
 * and the vectorised dot product; matrix-vector and matrix-matrix products are built on the dot product and run in
 * parallel over rows.
 *
 * <p>Matrices are row-major: row r of a [rows, cols] matrix occupies elements [r*cols, (r+1)*cols).
 */
public abstract class FloatTensor {
    protected final MemorySegment data;
    protected final long size;

    protected FloatTensor(MemorySegment data, long size) {
        this.data = data;
        this.size = size;
    }

    /** Wraps stored bytes as a tensor of the given type. */
    public static FloatTensor of(GgmlType type, MemorySegment data, long size) {
        long need = type.byteSize(size);
        if (data.byteSize() < need) {
            throw new IllegalArgumentException(type + " tensor of " + size + " elements needs " + need + " bytes, got " + data.byteSize());
        }
        return switch (type) {
            case F32 -> new F32Tensor(data, size);
            case F16 -> new F16Tensor(data, size);
            case BF16 -> new BF16Tensor(data, size);
            case Q8_0 -> new Q8_0Tensor(data, size);
            case Q4_0 -> new Q4_0Tensor(data, size);
            case Q4_K -> new Q4_KTensor(data, size);
            case Q6_K -> new Q6_KTensor(data, size);
            default -> throw new UnsupportedOperationException("tensor type " + type + " is not supported");
        };
    }

    public abstract GgmlType type();

    /** Bytes that {@code elements} elements (block-aligned) take in this tensor's memory: the type's size unless re-laid. */
    protected long storedBytes(long elements) { return type().byteSize(elements); }

    /**
     * Bytes ahead of the current position that the matvec kernels touch once per cache line (a plain load whose value
     * is unused), or 0 for none. Java has no prefetch instruction; on Intel's AVX-512 Xeons the hardware prefetcher
     * alone kept too few lines in flight for these compute-heavy loops, while on AMD's Zen the touched lines only
     * crowded the L1 and the same kernels streamed faster without them (docs/perf.md has both measurements).
     */
    static final long AHEAD = CpuCores.vendor().equals("GenuineIntel") ? 8192 : 0;
    private static volatile int sink;

    /** Loads the byte {@link #AHEAD} bytes after {@code byteOffset} (clamped to the tensor), for {@link #keep}. */
    protected final int touch(long byteOffset) {
        return AHEAD == 0 ? 0 : data.get(java.lang.foreign.ValueLayout.JAVA_BYTE, Math.min(byteOffset + AHEAD, data.byteSize() - 1));
    }

    /**
     * Loads one byte per cache line of the stored elements [offset, offset + n) (block-aligned), to pull them from DRAM
     * while other work runs: the outer-product GEMM touches its next tile's weights before multiplying the current
     * one, whose short row slices the hardware prefetcher does not follow. Returns their sum, for {@link #keep}.
     */
    final int touchRange(long offset, long n) {
        long from = storedBytes(offset), to = Math.min(storedBytes(offset + n), data.byteSize());
        int sum = 0;
        for (long b = from; b < to; b += 64) sum += data.get(java.lang.foreign.ValueLayout.JAVA_BYTE, b);
        return sum;
    }

    /** Consumes the sum of touched bytes so that the JIT keeps the loads (it cannot rule the branch out). */
    protected static void keep(int touched) {
        if (touched == Integer.MIN_VALUE) sink = touched;
    }

    public final long size() { return size; }

    public final MemorySegment segment() { return data; }

    public abstract float getFloat(long index);

    /** Sum over i in [0, n) of this[offset + i] * x[xOff + i]. {@code offset} is block-aligned for block types. */
    public float dot(long offset, float[] x, int xOff, int n) {
        float s = 0f;
        for (int i = 0; i < n; i++) s += getFloat(offset + i) * x[xOff + i];
        return s;
    }

    /** Dequantises elements [offset, offset + n) into out[outOff ..]. */
    public void copyTo(long offset, float[] out, int outOff, int n) {
        for (int i = 0; i < n; i++) out[outOff + i] = getFloat(offset + i);
    }

    /** out[outOff + r] = row r · x[xOff ..] for r in [0, rows), rows of {@code cols} elements; parallel over rows. */
    public void matvec(float[] x, int xOff, float[] out, int outOff, int rows, int cols) {
        Object p = prepareInput(x, xOff, cols);
        Parallel.forRange(rows, 64, (lo, hi) -> {
            for (int r = lo; r < hi; r++) out[outOff + r] = rowDot((long) r * cols, x, xOff, p, cols, 0, cols);
        });
    }

    /**
     * a·x into outA and b·x into outB (decode's gate and up projections) as one parallel loop over the rows of both:
     * one dispatch instead of two, and no thread idles at the end of the smaller product.
     */
    public static void matvec2(float[] x, int cols, FloatTensor a, float[] outA, int rowsA, FloatTensor b, float[] outB, int rowsB) {
        Object pa = a.prepareInput(x, 0, cols), pb = b.inputKind() == a.inputKind() ? pa : b.prepareInput(x, 0, cols);
        Parallel.forRange(rowsA + rowsB, 64, (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                boolean inA = r < rowsA;
                int row = inA ? r : r - rowsA;
                // one call site (see matvec3)
                float d = (inA ? a : b).rowDot((long) row * cols, x, 0, inA ? pa : pb, cols, 0, cols);
                (inA ? outA : outB)[row] = d;
            }
        });
    }

    /** a·x, b·x and c·x (decode's q, k and v projections) as one parallel loop over all their rows, as {@link #matvec2}. */
    public static void matvec3(float[] x, int cols, FloatTensor a, float[] outA, int rowsA, FloatTensor b, float[] outB, int rowsB,
                               FloatTensor c, float[] outC, int rowsC) {
        Object pa = a.prepareInput(x, 0, cols), pb = b.inputKind() == a.inputKind() ? pa : b.prepareInput(x, 0, cols),
                pc = c.inputKind() == a.inputKind() ? pa : c.inputKind() == b.inputKind() ? pb : c.prepareInput(x, 0, cols);
        int ab = rowsA + rowsB;
        Parallel.forRange(ab + rowsC, 64, (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                int m = r < rowsA ? 0 : r < ab ? 1 : 2, row = r - (m == 0 ? 0 : m == 1 ? rowsA : ab);
                // One call site for the three matrices: C2 inlines each kernel type it has seen there once. With a
                // call per matrix it inlined the same kernel three times, and the third copy went over its inlining
                // node budget (the lane sum called out of line on a boxed vector).
                float d = (m == 0 ? a : m == 1 ? b : c).rowDot((long) row * cols, x, 0, m == 0 ? pa : m == 1 ? pb : pc, cols, 0, cols);
                (m == 0 ? outA : m == 1 ? outB : outC)[row] = d;
            }
        });
    }

    /**
     * The input prepared once per product for this type's kernel (shared by all rows): x rearranged as a float[],
     * or quantised ({@link Int8Input}); null when the kernel reads x as it is. Types that share a layout may share the
     * returned scratch: products that run together have the same x, so its content is the same.
     */
    protected Object prepareInput(float[] x, int xOff, int n) { return null; }

    /**
     * The input of each of {@code batch} rows of x prepared as {@link #prepareInput} prepares a single row's, in
     * distinct instances, or null when this type's batched products do not go row by row (they do for {@link Int16Tensor}).
     */
    protected Object[] prepareRows(float[] x, int xStride, int batch, int n) { return null; }

    /**
     * Whether a batch of fewer rows than {@link #GEMM_ROWS} gives each row the bits it gets alone (decode's integer
     * copies, {@link Int16Tensor}, and column panels of them): decode then multiplies such batches, several
     * sequences' rows, through this tensor.
     */
    public boolean batchesLikeRows() { return false; }

    /** Tensors of the same kind prepare the same input from the same x: fused products prepare it once for them. */
    protected Object inputKind() { return getClass(); }

    /**
     * Σ_k this[offset + k] · x[xOff + from + k] for k in [0, n), for {@link #matvec}: {@code prepared} is what
     * {@link #prepareInput} returned for the whole x of a {@code cols}-long row, and {@code from} is where this run of
     * elements starts in the row (0 for a whole row; a multiple of the type's super-block otherwise).
     */
    protected float rowDot(long offset, float[] x, int xOff, Object prepared, int cols, int from, int n) {
        return dot(offset, x, xOff + from, n);
    }

    /**
     * Batched product for prefill and batched decode: for b in [0, batch), out[b*outStride + r] = row r · x[b*xStride ..].
     * Each weight row is read and dequantised once for the whole batch. From {@link OuterGemm#MIN_BATCH} rows up (prefill
     * chunks) the outer-product {@link OuterGemm} runs (1B Q8_0 shapes, 2 threads, AVX-512: batch 64 at ~48 token-rows/s
     * against ~20 here before; batch 16 ~30 against ~22). Below that, types with a fused {@link #dot4} run it per
     * row over groups of four batch rows; the others go in tiles of {@link #TILE_ROWS},
     * dequantised {@link #TILE_K} columns at a time into a small float buffer (L1), which a register-blocked kernel then
     * multiplies with every batch row's matching slice of x (TILE_K columns of the whole batch stay in L2).
     */
    public void matmul(float[] x, int xStride, float[] out, int outStride, int batch, int rows, int cols) {
        if (batch == 1) { matvec(x, 0, out, 0, rows, cols); return; }
        if (batch >= OuterGemm.MIN_BATCH) { OuterGemm.matmul(this, x, xStride, out, outStride, batch, rows, cols); return; }
        if (hasFusedDot4()) { matmulRows(x, xStride, out, outStride, batch, rows, cols); return; }
        int tiles = (rows + TILE_ROWS - 1) / TILE_ROWS;
        Parallel.forRange(tiles, 1, (lo, hi) -> {
            float[] w = SCRATCH.get();
            for (int kc = 0; kc < cols; kc += TILE_K) {
                int kn = Math.min(TILE_K, cols - kc);
                for (int t = lo; t < hi; t++) {
                    int r0 = t * TILE_ROWS, nr = Math.min(TILE_ROWS, rows - r0);
                    for (int i = 0; i < TILE_ROWS; i++) {
                        if (i < nr) copyTo((long) (r0 + i) * cols + kc, w, i * TILE_K, kn);
                        else java.util.Arrays.fill(w, i * TILE_K, i * TILE_K + kn, 0f);
                    }
                    Gemm.tile(w, kn, x, xStride, kc, out, outStride, r0, nr, batch, kc == 0);
                }
            }
        });
    }

    /**
     * Whether this type's {@link #dot4} converts weights in registers cheaply enough to beat the dequantise-then-tile
     * path. Measured (1 core, 8192x2048): Q8_0 batch 4: 3.1 GB/s by rows vs 1.1 tiled, batch 16: 1.0 vs 0.54, equal
     * at 64; Q4_K (no dot4) tiled: batch 16 0.29 GB/s vs 0.05 by repeated dots.
     */
    protected boolean hasFusedDot4() { return false; }

    /** Each row dequantised once per group of four batch rows ({@link #dot4}), the weights converted in registers. */
    private void matmulRows(float[] x, int xStride, float[] out, int outStride, int batch, int rows, int cols) {
        Parallel.forRange(rows, 16, (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                long off = (long) r * cols;
                int b = 0;
                for (; b + 4 <= batch; b += 4) {
                    dot4(off, x, b * xStride, (b + 1) * xStride, (b + 2) * xStride, (b + 3) * xStride, cols,
                            out, b * outStride + r, (b + 1) * outStride + r, (b + 2) * outStride + r, (b + 3) * outStride + r);
                }
                for (; b < batch; b++) out[b * outStride + r] = dot(off, x, b * xStride, cols);
            }
        });
    }

    /** Four dot products of the same row with four vectors; types override it to dequantise the row once. */
    protected void dot4(long offset, float[] x, int x0, int x1, int x2, int x3, int n, float[] out, int o0, int o1, int o2, int o3) {
        out[o0] = dot(offset, x, x0, n);
        out[o1] = dot(offset, x, x1, n);
        out[o2] = dot(offset, x, x2, n);
        out[o3] = dot(offset, x, x3, n);
    }

    /** Batches of at least this many rows take the outer-product GEMM ({@link OuterGemm}). */
    public static final int GEMM_ROWS = OuterGemm.MIN_BATCH;

    /** Rows per matmul tile and columns dequantised at a time (a multiple of every block size: 256). */
    static final int TILE_ROWS = 4, TILE_K = 512;
    private static final ThreadLocal<float[]> SCRATCH = ThreadLocal.withInitial(() -> new float[TILE_ROWS * TILE_K]);
}
