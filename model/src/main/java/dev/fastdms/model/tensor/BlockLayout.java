package dev.fastdms.model.tensor;

import java.lang.foreign.MemorySegment;

/**
 * How decode's copy of a matrix stores its blocks ({@link DecodeLayout}): as the file stores them, or re-laid for the
 * kernels ({@link Q4_KInt16}, {@link Q6_KInt16}). Element offsets stay what they were; only bytes move.
 */
interface BlockLayout {
    /** Bytes of {@code elements} elements (block-aligned) in this layout. */
    long bytes(long elements);

    /** Writes elements [from, from + n) of {@code src} (block-aligned) in this layout at {@code dst}'s byte {@code at}. */
    void copy(FloatTensor src, long from, long n, MemorySegment dst, long at);

    /** A tensor over memory holding {@code size} elements in this layout. */
    FloatTensor wrap(MemorySegment seg, long size);

    /** The file's own layout of {@code type}: a plain copy. */
    static BlockLayout stored(GgmlType type) {
        return new BlockLayout() {
            @Override public long bytes(long elements) { return type.byteSize(elements); }

            @Override
            public void copy(FloatTensor src, long from, long n, MemorySegment dst, long at) {
                MemorySegment.copy(src.segment(), type.byteSize(from), dst, at, type.byteSize(n));
            }

            @Override public FloatTensor wrap(MemorySegment seg, long size) { return FloatTensor.of(type, seg, size); }
        };
    }
}
