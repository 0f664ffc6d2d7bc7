package dev.fastdms.model.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

/**
 * Kernel benchmark (a main, not a test): matvec and batched matmul throughput per weight type on Llama-3.2-1B
 * shapes, off-heap, larger than the caches. Prints GB/s of weights read and the decode tokens/s the matvec rate
 * alone would allow for the 1B model (1.24 G weights per token).
 *
 * <pre>
 * ./mvnw -q -pl model -am test-compile
 * $JAVA_HOME/bin/java --add-modules jdk.incubator.vector -cp model/target/classes:model/target/test-classes:cache/target/classes \
 *     dev.fastdms.model.tensor.MatvecBench [threads]
 * </pre>
 */
public final class MatvecBench {
    public static void main(String[] args) {
        if (args.length > 0) Parallel.setThreads(Integer.parseInt(args[0]));
        int[][] shapes = {{8192, 2048}, {2048, 8192}, {32768, 2048}}; // ffn up/gate, ffn down, a vocabulary slice
        double weightsPerToken = 1.24e9;
        System.out.printf("threads %d%n%-6s %-12s %10s %12s %14s %14s%n", Parallel.threads(), "type", "shape", "MiB",
                "matvec GB/s", "1B tok/s bound", "matmul64 GB/s");
        for (GgmlType type : new GgmlType[]{GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q6_K, GgmlType.F16, GgmlType.BF16}) {
            for (int[] s : shapes) {
                int rows = s[0], cols = s[1];
                long bytes = type.byteSize((long) rows * cols);
                MemorySegment seg = Arena.ofAuto().allocate(bytes, 64);
                fill(seg, type);
                FloatTensor t = FloatTensor.of(type, seg, (long) rows * cols);
                float[] x = new float[64 * cols], out = new float[64 * rows];
                SplittableRandom r = new SplittableRandom(1);
                for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
                double mv = best(() -> t.matvec(x, 0, out, 0, rows, cols), 15);
                double mm = best(() -> t.matmul(x, cols, out, rows, 64, rows, cols), 3);
                double gbs = bytes / mv / 1e9;
                double elems = (double) rows * cols;
                System.out.printf("%-6s %-12s %10.1f %12.2f %14.1f %14.2f%n", type, rows + "x" + cols, bytes / 1048576.0, gbs,
                        elems / mv / weightsPerToken, bytes / mm / 1e9);
            }
        }
    }

    static double best(Runnable r, int reps) {
        r.run();
        double best = Double.MAX_VALUE;
        for (int i = 0; i < reps; i++) {
            long t0 = System.nanoTime();
            r.run();
            best = Math.min(best, (System.nanoTime() - t0) / 1e9);
        }
        return best;
    }

    /** Random bytes with sane f16 scales / values so no NaN slows the arithmetic. */
    static void fill(MemorySegment seg, GgmlType type) {
        SplittableRandom r = new SplittableRandom(7);
        ValueLayout.OfShort S = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        for (long i = 0; i < seg.byteSize(); i += 8) seg.set(ValueLayout.JAVA_LONG_UNALIGNED, i, r.nextLong());
        short small = Float.floatToFloat16(0.01f);
        switch (type) {
            case Q8_0, Q4_0 -> { for (long b = 0; b < seg.byteSize(); b += type.typeSize) seg.set(S, b, small); }
            case Q4_K -> { for (long b = 0; b < seg.byteSize(); b += 144) { seg.set(S, b, small); seg.set(S, b + 2, small); } }
            case Q6_K -> { for (long b = 0; b < seg.byteSize(); b += 210) seg.set(S, b + 208, small); }
            case F16 -> { for (long b = 0; b < seg.byteSize(); b += 2) seg.set(S, b, Float.floatToFloat16((float) r.nextGaussian() * 0.02f)); }
            case BF16 -> { for (long b = 0; b < seg.byteSize(); b += 2) seg.set(S, b, (short) (Float.floatToRawIntBits((float) r.nextGaussian() * 0.02f) >>> 16)); }
            default -> { }
        }
    }
}
