package dev.fastdms.model.format;

import dev.fastdms.model.tensor.FloatTensor;
import dev.fastdms.model.tensor.GgmlType;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * A named tensor as stored in a model file: element type, shape in row-major order (torch order: the last dimension
 * is contiguous; GGUF's ne[] is reversed into this order when read) and its bytes, usually a slice of a memory map.
 */
public record RawTensor(String name, GgmlType type, long[] shape, MemorySegment data) {
    public long elements() {
        long n = 1;
        for (long d : shape) n *= d;
        return n;
    }

    /** Rows of a 2-D tensor (first dim); 1 for a vector. */
    public long rows() { return shape.length < 2 ? 1 : shape[0]; }

    /** Contiguous length: the last dimension. */
    public long cols() { return shape[shape.length - 1]; }

    /** Every element dequantised to a float, in storage order. */
    public float[] floats() {
        long n = elements();
        if (n > Integer.MAX_VALUE - 8) throw new IllegalArgumentException(name + ": " + n + " elements do not fit one float array");
        float[] out = new float[(int) n];
        FloatTensor.of(type, data, n).copyTo(0, out, 0, (int) n);
        return out;
    }

    @Override
    public String toString() { return name + " " + type + " " + Arrays.toString(shape); }
}
