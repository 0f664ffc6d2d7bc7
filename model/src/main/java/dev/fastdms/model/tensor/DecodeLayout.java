package dev.fastdms.model.tensor;

import java.lang.foreign.MemorySegment;

/**
 * The copies of weight matrices that single-row decode multiplies, re-laid once for the matvec kernels: long rows
 * in {@link ColumnPanels}, Q4_0 and Q4_K for integer products ({@link Q4_0Int16}, {@link Q4_KInt16}), Q6_K as
 * bytes ({@link Q6_KInt16}). Prefill and batched products keep reading the stored layout, so commands that never decode one
 * row (eval) make no copies. Any copy that finds no memory for itself is skipped, and the original is used.
 */
public final class DecodeLayout {
    /** {@code -Dfastdms.decode.relayout=false} keeps decode on the stored blocks (for comparisons). */
    static final boolean RELAYOUT = !"false".equals(System.getProperty("fastdms.decode.relayout"));

    private DecodeLayout() {}

    /** Decode's copy of a [rows, cols] matrix, or {@code t} itself when no re-layout applies. */
    public static FloatTensor of(FloatTensor t, int rows, int cols) {
        BlockLayout relaid = relayout(t, cols);
        FloatTensor p = ColumnPanels.of(t, rows, cols, relaid != null ? relaid : BlockLayout.stored(t.type()));
        if (p != t || relaid == null) return p;
        long size = t.size();
        MemorySegment seg = SharedMemory.allocate(relaid.bytes(size));
        if (seg == null) return t;
        long per = 64L * t.type().blockSize, pieces = (size + per - 1) / per; // 64 blocks at a time
        Parallel.forRange((int) pieces, 1, (lo, hi) -> {
            long from = lo * per, to = Math.min(size, hi * per);
            relaid.copy(t, from, to - from, seg, relaid.bytes(from));
        });
        return relaid.wrap(seg, size);
    }

    /** Bytes that {@link #of} copies for this matrix into /dev/shm (0 where decode uses it as stored). */
    public static long copyBytes(FloatTensor t, int rows, int cols) {
        BlockLayout relaid = relayout(t, cols);
        if (relaid != null) return relaid.bytes((long) rows * cols);
        return ColumnPanels.applies(t, cols) ? t.type().byteSize((long) rows * cols) : 0;
    }

    /** Bytes of /dev/shm that this process's decode copies have taken so far. */
    public static long bytesCopiedSoFar() { return SharedMemory.mappedSoFar(); }

    /** The re-layout for this matrix's blocks, or null to keep them as stored. */
    private static BlockLayout relayout(FloatTensor t, int cols) {
        return !RELAYOUT ? null : switch (t) {
            case Q4_0Tensor q when Q4_0Int16.fits(cols) -> Q4_0Int16.LAYOUT;
            case Q4_KTensor q -> Q4_KInt16.LAYOUT;
            case Q6_KTensor q -> Q6_KInt16.LAYOUT;
            default -> null;
        };
    }
}
