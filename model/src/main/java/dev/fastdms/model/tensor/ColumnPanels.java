package dev.fastdms.model.tensor;

import java.lang.foreign.MemorySegment;

/**
 * A matrix with long rows, copied at load into column panels: panel p holds columns [p·PANEL, p·PANEL + width) of
 * every row, row after row. A matvec then streams each panel sequentially while that panel of x (16 KiB) stays in
 * L1: with rows of 8192 columns the whole 32 KiB x was evicted by the streaming weights and reloaded for every row,
 * and the FFN down projection read at half the speed of the other matrices. (Processing long rows panel by panel in
 * place, or two rows per pass, was slower still: strided streams, and a larger working set.) Every other operation
 * takes row-major offsets, as for any tensor, and splits at panel boundaries.
 */
public final class ColumnPanels extends FloatTensor {
    static final int PANEL = 4096;
    private final FloatTensor panels;
    private final int rows, cols;

    private ColumnPanels(FloatTensor panels, int rows, int cols) {
        super(panels.segment(), panels.size());
        this.panels = panels;
        this.rows = rows;
        this.cols = cols;
    }

    /** The matrix rearranged into panels when its rows are longer than a panel (the JVM forward's copy), else itself. */
    public static FloatTensor of(FloatTensor t, int rows, int cols) { return of(t, rows, cols, BlockLayout.stored(t.type())); }

    /** As above, the panels' blocks stored in {@code layout}. */
    static FloatTensor of(FloatTensor t, int rows, int cols, BlockLayout layout) {
        if (!applies(t, cols)) return t;
        MemorySegment seg = SharedMemory.allocate(layout.bytes((long) rows * cols));
        if (seg == null) return t;
        for (int p0 = 0; p0 < cols; p0 += PANEL) {
            int w = Math.min(PANEL, cols - p0), from = p0;
            long base = layout.bytes((long) rows * p0), chunk = layout.bytes(w);
            Parallel.forRange(rows, 16, (lo, hi) -> {
                for (int r = lo; r < hi; r++) layout.copy(t, (long) r * cols + from, w, seg, base + r * chunk);
            });
        }
        return new ColumnPanels(layout.wrap(seg, (long) rows * cols), rows, cols);
    }

    /** Whether {@link #of} rearranges a matrix with rows of {@code cols} elements. */
    static boolean applies(FloatTensor t, int cols) {
        return cols > PANEL && PANEL % t.type().blockSize == 0 && !(t instanceof ColumnPanels);
    }

    FloatTensor panels() { return panels; }

    @Override public GgmlType type() { return panels.type(); }

    /** Where row-major element i lives among the panels. */
    private long map(long i) {
        int r = (int) (i / cols), c = (int) (i % cols), p0 = c / PANEL * PANEL;
        return (long) rows * p0 + (long) r * Math.min(PANEL, cols - p0) + (c - p0);
    }

    /** Elements left in the panel of row-major element i. */
    private int run(long i) { return PANEL - (int) (i % cols) % PANEL; }

    @Override public float getFloat(long i) { return panels.getFloat(map(i)); }

    @Override
    public float dot(long offset, float[] x, int xOff, int n) { return rowDot(offset, x, xOff, null, cols, 0, n); }

    @Override
    public void copyTo(long offset, float[] out, int outOff, int n) {
        for (int k = 0; k < n; ) {
            int len = Math.min(n - k, run(offset + k));
            panels.copyTo(map(offset + k), out, outOff + k, len);
            k += len;
        }
    }

    @Override protected Object prepareInput(float[] x, int xOff, int n) { return panels.prepareInput(x, xOff, n); }

    @Override protected Object inputKind() { return panels.inputKind(); }

    @Override
    protected float rowDot(long offset, float[] x, int xOff, Object prepared, int cols, int from, int n) {
        float s = 0f;
        for (int k = 0; k < n; ) {
            int len = Math.min(n - k, run(offset + k));
            s += panels.rowDot(map(offset + k), x, xOff, prepared, cols, from + k, len);
            k += len;
        }
        return s;
    }

    @Override public boolean batchesLikeRows() { return panels.batchesLikeRows(); }

    /**
     * Batches below the outer-product GEMM's, for panels that batch rows as they multiply one ({@link Int16Tensor}): as
     * {@link #matvec}, each row of x prepared apart, so that every row gets the bits a single row gets.
     * (For the float types this sweep cost 10 % of a batched Q8_0 decode step against the stored rows' own kernels.)
     */
    @Override
    public void matmul(float[] x, int xStride, float[] out, int outStride, int batch, int rows, int cols) {
        Object[] prepared = batch > 1 && batch < GEMM_ROWS ? panels.prepareRows(x, xStride, batch, cols) : null;
        if (prepared == null) { super.matmul(x, xStride, out, outStride, batch, rows, cols); return; }
        sweep(x, 0, xStride, prepared, out, 0, outStride, rows, cols);
    }

    @Override
    public void matvec(float[] x, int xOff, float[] out, int outOff, int rows, int cols) {
        sweep(x, xOff, 0, new Object[]{panels.prepareInput(x, xOff, cols)}, out, outOff, 0, rows, cols);
    }

    /**
     * Each thread sweeps its rows panel by panel: one sequential stream per panel, that panel of x in L1; each panel
     * row's dots with the rows of x (one per prepared input, row b at xOff + b·xStride) while it is in L1.
     */
    private void sweep(float[] x, int xOff, int xStride, Object[] prepared, float[] out, int outOff, int outStride, int rows, int cols) {
        if (rows != this.rows || cols != this.cols) throw new IllegalArgumentException("a " + this.rows + "x" + this.cols + " matrix, not " + rows + "x" + cols);
        Parallel.forRange(rows, 64, (lo, hi) -> {
            for (int p0 = 0; p0 < cols; p0 += PANEL) {
                int w = Math.min(PANEL, cols - p0);
                long base = (long) rows * p0;
                for (int r = lo; r < hi; r++) {
                    for (int b = 0; b < prepared.length; b++) {
                        float d = panels.rowDot(base + (long) r * w, x, xOff + b * xStride, prepared[b], cols, p0, w);
                        int o = outOff + b * outStride + r;
                        out[o] = p0 == 0 ? d : out[o] + d;
                    }
                }
            }
        });
    }
}
