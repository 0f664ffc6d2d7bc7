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
        Parallel.forRange(rows, 64, (lo, hi) -> {
            for (int r = lo; r < hi; r++) out[outOff + r] = dot((long) r * cols, x, xOff, cols);
        });
    }

    /**
     * Batched product for prefill and batched decode: for b in [0, batch), out[b*outStride + r] = row r · x[b*xStride ..].
     * Each weight row is read once for the whole batch, and dequantised once per group of four batch rows
     * (that is what makes prefill faster than token-by-token decode).
     */
    public void matmul(float[] x, int xStride, float[] out, int outStride, int batch, int rows, int cols) {
        if (batch == 1) { matvec(x, 0, out, 0, rows, cols); return; }
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
}
