package dev.fastdms.model.tensor;

/**
 * The copies of weight matrices that single-row decode multiplies, re-laid once for the matvec kernels: long rows
 * in {@link ColumnPanels}, Q4_K with its scales as floats ({@link Q4_KFloatScales}). Prefill and batched products
 * keep reading the stored layout, so commands that never decode one row (eval) make no copies. Any copy that finds
 * no memory for itself is skipped, and the original is used.
 */
public final class DecodeLayout {
    /** {@code -Dfastdms.q4k.floatScales=false} keeps decode on the stored Q4_K blocks (for comparisons). */
    static final boolean Q4K_FLOAT_SCALES = !"false".equals(System.getProperty("fastdms.q4k.floatScales"));

    private DecodeLayout() {}

    /** Decode's copy of a [rows, cols] matrix, or {@code t} itself when no re-layout applies. */
    public static FloatTensor of(FloatTensor t, int rows, int cols) {
        FloatTensor p = ColumnPanels.of(t, rows, cols);
        return p instanceof ColumnPanels panels ? panels.withPanels(DecodeLayout::relaid) : relaid(p);
    }

    private static FloatTensor relaid(FloatTensor t) {
        if (Q4K_FLOAT_SCALES && t instanceof Q4_KTensor q) {
            FloatTensor f = Q4_KFloatScales.of(q);
            return f == null ? t : f;
        }
        return t;
    }
}
