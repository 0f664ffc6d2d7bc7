package dev.fastdms.model.tensor;

/**
 * The copies of weight matrices that single-row decode multiplies, re-laid once for the matvec kernels: long rows
 * in {@link ColumnPanels}, Q4_K with its scales as floats ({@link Q4_KFloatScales}), Q6_K as bytes
 * ({@link Q6_KInt8}). Prefill and batched products keep reading the stored layout, so commands that never decode one
 * row (eval) make no copies. Any copy that finds no memory for itself is skipped, and the original is used.
 */
public final class DecodeLayout {
    /** {@code -Dfastdms.decode.relayout=false} keeps decode on the stored k-quant blocks (for comparisons). */
    static final boolean RELAYOUT = !"false".equals(System.getProperty("fastdms.decode.relayout"));

    private DecodeLayout() {}

    /** Decode's copy of a [rows, cols] matrix, or {@code t} itself when no re-layout applies. */
    public static FloatTensor of(FloatTensor t, int rows, int cols) {
        FloatTensor p = ColumnPanels.of(t, rows, cols);
        return p instanceof ColumnPanels panels ? panels.withPanels(DecodeLayout::relaid) : relaid(p);
    }

    private static FloatTensor relaid(FloatTensor t) {
        FloatTensor copy = !RELAYOUT ? null : switch (t) {
            case Q4_KTensor q -> Q4_KFloatScales.of(q);
            case Q6_KTensor q -> Q6_KInt8.of(q);
            default -> null;
        };
        return copy != null ? copy : t;
    }
}
