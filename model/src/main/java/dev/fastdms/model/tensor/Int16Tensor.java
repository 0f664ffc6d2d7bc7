package dev.fastdms.model.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

/**
 * A decode copy whose kernel multiplies x rounded to int8 ({@link Int8Input}) on 16-bit lanes: {@link Q4_0Int16},
 * {@link Q4_KInt16}, {@link Q6_KInt16}. Their layouts share one lane order per group of 128 weights, so fused products
 * prepare x once for all of them.
 */
abstract sealed class Int16Tensor extends FloatTensor permits Q4_0Int16, Q4_KInt16, Q6_KInt16 {
    static final int GROUP = Int8Input.GROUP;
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256, FW = FloatVector.SPECIES_512;
    static final VectorSpecies<Short> S = ShortVector.SPECIES_256, SW = ShortVector.SPECIES_512;
    static final VectorSpecies<Byte> B = ByteVector.SPECIES_128, BW = ByteVector.SPECIES_256;

    Int16Tensor(MemorySegment data, long size) { super(data, size); }

    @Override
    public final float dot(long offset, float[] x, int xOff, int n) { return kernel(offset, Int8Input.quantize(x, xOff, n), 0, n); }

    @Override protected final Object prepareInput(float[] x, int xOff, int n) { return Int8Input.quantize(x, xOff, n); }

    @Override protected final Object inputKind() { return Int8Input.class; }

    @Override
    protected final float rowDot(long offset, float[] x, int xOff, Object prepared, int cols, int from, int n) {
        return prepared instanceof Int8Input in ? kernel(offset, in, from, n) : dot(offset, x, xOff + from, n);
    }

    /**
     * Batches below the outer-product GEMM's (a decode step of several sequences) go row by row through the same
     * kernel, each row of x quantised as a single row's is: every row gets the bits it would get alone. Each weight
     * row is read from memory once; the batch's dots then find it in L1.
     */
    @Override
    public void matmul(float[] x, int xStride, float[] out, int outStride, int batch, int rows, int cols) {
        if (batch == 1 || batch >= GEMM_ROWS) { super.matmul(x, xStride, out, outStride, batch, rows, cols); return; }
        Int8Input[] in = Int8Input.quantizeRows(x, xStride, batch, cols);
        Parallel.forRange(rows, 16, (lo, hi) -> {
            for (int r = lo; r < hi; r++) for (int b = 0; b < batch; b++) out[b * outStride + r] = kernel((long) r * cols, in[b], 0, cols);
        });
    }

    @Override protected final Object[] prepareRows(float[] x, int xStride, int batch, int n) { return Int8Input.quantizeRows(x, xStride, batch, n); }

    @Override public final boolean batchesLikeRows() { return true; }

    private float kernel(long offset, Int8Input in, int from, int n) {
        return Q8_0Tensor.WIDE ? dot512(offset, in, from, n) : dot256(offset, in, from, n);
    }

    /** Σ weight · x over elements [offset, offset + n) of this copy, x being elements [from, from + n) of {@code in}. */
    abstract float dot512(long offset, Int8Input in, int from, int n);

    /** {@link #dot512} on 256-bit vectors (AVX2). */
    abstract float dot256(long offset, Int8Input in, int from, int n);
}
