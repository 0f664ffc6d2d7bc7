package dev.fastdms.model.tensor;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.RecursiveAction;

/** Parallel loops over index ranges on a dedicated pool sized to the thread count the user chose. */
public final class Parallel {
    private static volatile ForkJoinPool pool = new ForkJoinPool(Runtime.getRuntime().availableProcessors());

    private Parallel() {}

    @FunctionalInterface
    public interface RangeBody { void run(int lo, int hi); }

    /** Sets the number of worker threads (the CLI's --threads). */
    public static synchronized void setThreads(int n) {
        if (n < 1) throw new IllegalArgumentException("threads must be >= 1");
        ForkJoinPool old = pool;
        pool = new ForkJoinPool(n);
        old.shutdown();
    }

    public static int threads() { return pool.getParallelism(); }

    /** Runs body over [0, n) split into chunks of at least {@code grain} indices, in parallel. */
    public static void forRange(int n, int grain, RangeBody body) {
        if (n <= 0) return;
        int parts = Math.min(pool.getParallelism() * 4, Math.max(1, n / Math.max(1, grain)));
        if (parts <= 1) { body.run(0, n); return; }
        pool.invoke(new Split(body, 0, n, Math.max(grain, (n + parts - 1) / parts)));
    }

    private static final class Split extends RecursiveAction {
        final RangeBody body; final int lo, hi, chunk;
        Split(RangeBody body, int lo, int hi, int chunk) { this.body = body; this.lo = lo; this.hi = hi; this.chunk = chunk; }
        @Override protected void compute() {
            if (hi - lo <= chunk) { body.run(lo, hi); return; }
            int mid = lo + (hi - lo) / 2;
            invokeAll(new Split(body, lo, mid, chunk), new Split(body, mid, hi, chunk));
        }
    }
}
