package dev.fastdms.model.tensor;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * Parallel loops over index ranges for the forward pass: a fixed set of threads, the caller among them, taking
 * contiguous chunks of the range from a shared counter ({@link #CHUNKS} per thread, so a thread slowed by the other
 * tenants of a shared machine does not hold up the rest: with one fixed share each, the first thread done spun ~8%
 * of a decode step waiting). A decode step issues over a hundred short parallel loops, so dispatch
 * must cost microseconds: workers spin briefly for the next loop before parking (as llama.cpp's thread pool does),
 * and no work stealing or joins are involved (a ForkJoinPool adds compensation threads and wake-up latency here).
 * Idle workers park without a timeout and a caller waiting for a slow worker parks too, so an idle or oversubscribed
 * pool costs no CPU (spinning threads would steal the cores the working ones need).
 */
public final class Parallel {
    @FunctionalInterface
    public interface RangeBody { void run(int lo, int hi); }

    private static volatile Pool pool = new Pool(CpuCores.forThisProcess());

    private Parallel() {}

    /** Sets the number of threads (the CLI's --threads), the caller included. */
    public static synchronized void setThreads(int n) {
        if (n < 1) throw new IllegalArgumentException("threads must be >= 1");
        if (n == pool.size) return;
        Pool old = pool;
        pool = new Pool(n);
        old.shutdown();
    }

    public static int threads() { return pool.size; }

    /** How long a thread spins before parking: covers the gaps between the loops of one decode step. */
    static final long SPIN_NANOS = 50_000;

    /** Chunks per thread in one loop. */
    static final int CHUNKS = 4;

    /** Runs body over [0, n) in contiguous chunks of at least {@code grain}; ranges shorter than 2*grain run inline. */
    public static void forRange(int n, int grain, RangeBody body) {
        if (n <= 0) return;
        Pool p = pool;
        if (p.size == 1 || n < 2 * Math.max(1, grain) || Thread.currentThread() instanceof Worker || !p.tryAcquire()) {
            body.run(0, n);
            return;
        }
        p.run(n, grain, body);
    }

    private static final class Worker extends Thread {
        Worker(Runnable r, String name) { super(r, name); setDaemon(true); }
    }

    private static final class Pool {
        final int size;
        final Worker[] workers;
        final AtomicInteger busy = new AtomicInteger(); // one loop at a time; a second caller runs inline
        final AtomicInteger remaining = new AtomicInteger();
        final AtomicInteger next = new AtomicInteger(); // first index not yet taken
        volatile long generation;
        volatile boolean stop;
        volatile Throwable failure;
        volatile Thread caller; // unparked by the worker that finishes last
        RangeBody body;
        int count, chunk;

        Pool(int size) {
            this.size = size;
            workers = new Worker[size - 1];
            for (int i = 0; i < workers.length; i++) {
                final int share = i + 1;
                workers[i] = new Worker(() -> loop(share), "fastdms-worker-" + share);
                workers[i].start();
            }
        }

        boolean tryAcquire() { return busy.compareAndSet(0, 1); }

        void run(int n, int grain, RangeBody b) {
            try {
                body = b;
                count = n;
                chunk = Math.max(Math.max(1, grain), (n + size * CHUNKS - 1) / (size * CHUNKS));
                next.set(0);
                failure = null; // before publishing: a fast worker may fail at once
                remaining.set(workers.length);
                caller = Thread.currentThread();
                generation++; // publishes body, count, chunk
                for (Worker w : workers) LockSupport.unpark(w);
                Throwable f = null;
                try {
                    take(n, chunk, b);
                } catch (Throwable t) {
                    f = t;
                    next.set(n); // no more chunks for anyone
                }
                // the workers must be out of this loop before the next one reuses the fields, even after a failure
                long spinUntil = System.nanoTime() + SPIN_NANOS;
                while (remaining.get() > 0) {
                    if (System.nanoTime() < spinUntil) Thread.onSpinWait();
                    else LockSupport.park(this);
                }
                if (f == null) f = failure;
                if (f instanceof RuntimeException re) throw re;
                if (f instanceof Error e) throw e;
                if (f != null) throw new IllegalStateException(f);
            } finally {
                body = null;
                busy.set(0);
            }
        }

        void take(int n, int c, RangeBody b) {
            for (int lo; (lo = next.getAndAdd(c)) < n; ) b.run(lo, Math.min(n, lo + c));
        }

        void loop(int share) {
            long seen = 0;
            while (!stop) {
                long spinUntil = System.nanoTime() + SPIN_NANOS;
                while (generation == seen && !stop) {
                    if (System.nanoTime() < spinUntil) Thread.onSpinWait();
                    else LockSupport.park(this); // the caller unparks every worker when it publishes a loop
                }
                if (stop) return;
                seen = generation;
                try {
                    take(count, chunk, body);
                } catch (Throwable t) {
                    failure = t; // rethrown by the caller
                    next.set(count); // no more chunks for anyone
                } finally {
                    if (remaining.decrementAndGet() == 0) LockSupport.unpark(caller);
                }
            }
        }

        void shutdown() {
            stop = true;
            for (Worker w : workers) LockSupport.unpark(w);
        }
    }
}
