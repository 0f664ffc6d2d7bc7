package dev.fastdms.model.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Kernel benchmark (a main, not a test): matvec and batched matmul throughput per weight type on Llama-3.2-1B
 * shapes, off-heap. Each shape is allocated in enough copies to exceed 1 GiB and the runs cycle through them, so
 * every product streams its weights from DRAM as a decode step does (a 2048x2048 Q8_0 matrix alone would sit in L3, and one Xeon here has 480 MiB of it).
 * Prints GB/s of weights read and the decode tokens/s the matvec rate alone would allow for the 1B model
 * (1.24 G weights per token, the output projection included).
 *
 * <pre>
 * ./mvnw -q -pl model -am test-compile
 * $JAVA_HOME/bin/java --add-modules jdk.incubator.vector -XX:+UseParallelGC \
 *     -cp model/target/classes:model/target/test-classes:cache/target/classes \
 *     dev.fastdms.model.tensor.MatvecBench [threads=2] [types=Q8_0,Q4_0,Q4_K,Q6_K,F16,BF16] [batches=16,64] [ms=400] [clock=cpu] [mb=1024] [panels=true]
 * </pre>
 */
public final class MatvecBench {
    static long minBytes = 1024L << 20;
    /** clock=cpu (with threads=1): time by the thread's CPU time, to compare kernels on a machine shared with others. */
    static boolean cpuClock, panels;
    static final java.lang.management.ThreadMXBean MX = java.lang.management.ManagementFactory.getThreadMXBean();

    static long now() { return cpuClock ? MX.getCurrentThreadCpuTime() : System.nanoTime(); }

    public static void main(String[] args) {
        int threads = 2;
        String types = "Q8_0,Q4_0,Q4_K,Q6_K,F16,BF16";
        String batches = "16,64";
        String shapeArg = "2048x2048,512x2048,8192x2048,2048x8192,128256x2048";
        long ms = 400;
        for (String a : args) {
            String[] kv = a.split("=", 2);
            switch (kv[0]) {
                case "threads" -> threads = Integer.parseInt(kv[1]);
                case "types" -> types = kv[1];
                case "batches" -> batches = kv[1];
                case "shapes" -> shapeArg = kv[1];
                case "ms" -> ms = Long.parseLong(kv[1]);
                case "mb" -> minBytes = Long.parseLong(kv[1]) << 20; // mb=0: one copy (in cache when small)
                case "clock" -> cpuClock = kv[1].equals("cpu");
                case "panels" -> panels = kv[1].equals("true"); // as the JVM forward's decode holds them (DecodeLayout)
                default -> throw new IllegalArgumentException("unknown argument " + a);
            }
        }
        if (cpuClock && threads != 1) throw new IllegalArgumentException("clock=cpu needs threads=1");
        Parallel.setThreads(threads);
        double weightsPerToken = 1.24e9;
        System.out.printf("threads %d; shapes are rows x cols (out x in)%n", Parallel.threads());
        StringBuilder head = new StringBuilder(String.format("%-5s %-12s %8s %9s %8s", "type", "shape", "MiB", "mv GB/s", "1B tok/s"));
        String[] bs = batches.isEmpty() ? new String[0] : batches.split(",");
        for (String b : bs) head.append(String.format(" %9s %9s", "mm" + b + " GB/s", "tok/s"));
        System.out.println(head);
        for (String tn : types.split(",")) {
            GgmlType type = GgmlType.valueOf(tn);
            for (String sh : shapeArg.split(",")) {
                String[] rc = sh.split("x");
                int rows = Integer.parseInt(rc[0]), cols = Integer.parseInt(rc[1]);
                long bytes = type.byteSize((long) rows * cols);
                int copies = (int) Math.max(1, (minBytes + bytes - 1) / bytes);
                List<FloatTensor> ts = new ArrayList<>();
                Arena arena = Arena.ofShared();
                for (int c = 0; c < copies; c++) {
                    // unaligned, like a GGUF slice; with panels=true mapped, as the model file is: decode's copies are
                    // mapped too, and kernels that saw two segment classes would run slower than in the engine
                    MemorySegment mapped = panels ? SharedMemory.allocate(bytes + 1) : null;
                    MemorySegment seg = (mapped != null ? mapped : arena.allocate(bytes + 1, 64)).asSlice(1);
                    fill(seg, type, c);
                    FloatTensor t = FloatTensor.of(type, seg, (long) rows * cols);
                    ts.add(panels ? DecodeLayout.of(t, rows, cols) : t);
                }
                int maxB = 1;
                for (String b : bs) maxB = Math.max(maxB, Integer.parseInt(b));
                float[] x = new float[maxB * cols], out = new float[maxB * rows];
                SplittableRandom r = new SplittableRandom(1);
                for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
                double mv = time(ts, t -> t.matvec(x, 0, out, 0, rows, cols), ms);
                StringBuilder line = new StringBuilder(String.format("%-5s %-12s %8.1f %9.2f %8.1f", type, sh, bytes / 1048576.0,
                        bytes / mv / 1e9, (double) rows * cols / mv / weightsPerToken));
                for (String b : bs) {
                    int batch = Integer.parseInt(b);
                    double mm = time(ts, t -> t.matmul(x, cols, out, rows, batch, rows, cols), ms);
                    line.append(String.format(" %9.2f %9.1f", bytes / mm / 1e9, batch * (double) rows * cols / mm / weightsPerToken));
                }
                System.out.println(line);
                arena.close();
            }
        }
        System.exit(0);
    }

    interface Op { void run(FloatTensor t); }

    /** Seconds per call: warm up, then the median of timed rounds that each cycle over all copies. */
    static double time(List<FloatTensor> ts, Op op, long ms) {
        long bytes = ts.getFirst().type().byteSize(ts.getFirst().size()) * ts.size();
        int reps = (int) Math.max(1, (32L << 20) / bytes); // rounds of at least 32 MiB of weights
        long end = System.nanoTime() + ms * 1_000_000L / 3;
        int i = 0;
        while (System.nanoTime() < end) op.run(ts.get(i++ % ts.size()));
        List<Double> rounds = new ArrayList<>();
        end = System.nanoTime() + ms * 1_000_000L;
        do {
            long t0 = now();
            for (int k = 0; k < reps; k++) for (FloatTensor t : ts) op.run(t);
            rounds.add((now() - t0) / 1e9 / ts.size() / reps);
        } while (System.nanoTime() < end || rounds.size() < 3);
        rounds.sort(null);
        return rounds.get(rounds.size() / 2);
    }

    /** Random bytes with sane f16 scales / values so no NaN or subnormal slows the arithmetic. */
    static void fill(MemorySegment seg, GgmlType type, long seed) {
        SplittableRandom r = new SplittableRandom(7 + seed);
        ValueLayout.OfShort S = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        long n = seg.byteSize();
        for (long i = 0; i + 8 <= n; i += 8) seg.set(ValueLayout.JAVA_LONG_UNALIGNED, i, r.nextLong());
        short small = Float.floatToFloat16(0.01f);
        switch (type) {
            case Q8_0, Q4_0 -> { for (long b = 0; b < n; b += type.typeSize) seg.set(S, b, small); }
            case Q4_K -> { for (long b = 0; b < n; b += 144) { seg.set(S, b, small); seg.set(S, b + 2, small); } }
            case Q6_K -> { for (long b = 0; b < n; b += 210) seg.set(S, b + 208, small); }
            case F16 -> { for (long b = 0; b < n; b += 2) seg.set(S, b, Float.floatToFloat16((float) r.nextGaussian() * 0.02f)); }
            case BF16 -> { for (long b = 0; b < n; b += 2) seg.set(S, b, (short) (Float.floatToRawIntBits((float) r.nextGaussian() * 0.02f) >>> 16)); }
            case F32 -> { for (long b = 0; b + 4 <= n; b += 4) seg.set(ValueLayout.JAVA_FLOAT_UNALIGNED, b, (float) r.nextGaussian() * 0.02f); }
            default -> { }
        }
    }
}
