package dev.fastdms.model.tensor;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.*;

/** The thread pool's loops: every index exactly once, whatever the chunking; failures reach the caller. */
class ParallelTest {
    static final int BEFORE = Parallel.threads();

    @AfterAll
    static void restore() { Parallel.setThreads(BEFORE); }

    @Test
    void everyIndexRunsExactlyOnce() {
        for (int threads : new int[]{1, 2, 3, 5}) {
            Parallel.setThreads(threads);
            for (int n : new int[]{1, 2, 7, 64, 129, 1000, 4097}) {
                for (int grain : new int[]{1, 16, 64}) {
                    AtomicIntegerArray hits = new AtomicIntegerArray(n);
                    for (int round = 0; round < 20; round++) {
                        Parallel.forRange(n, grain, (lo, hi) -> {
                            assertTrue(0 <= lo && lo < hi && hi <= n, lo + ".." + hi);
                            for (int i = lo; i < hi; i++) hits.incrementAndGet(i);
                        });
                    }
                    for (int i = 0; i < n; i++) assertEquals(20, hits.get(i), "threads " + threads + " n " + n + " grain " + grain + " index " + i);
                }
            }
        }
    }

    @Test
    void chunksAreAtLeastTheGrainExceptTheLast() {
        Parallel.setThreads(2);
        int n = 1000, grain = 64;
        Parallel.forRange(n, grain, (lo, hi) -> assertTrue(hi - lo >= grain || hi == n, lo + ".." + hi));
    }

    @Test
    void aFailureInAnyThreadReachesTheCaller() {
        Parallel.setThreads(2);
        // the failing index moves through the range, so over the rounds both the caller and the worker hit it
        for (int round = 0; round < 200; round++) {
            final int bad = (round * 37) % 1000;
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> Parallel.forRange(1000, 1, (lo, hi) -> {
                if (lo <= bad && bad < hi) throw new IllegalStateException("row " + bad);
            }), "round " + round);
            assertEquals("row " + bad, e.getMessage());
        }
        // the pool still works afterwards
        AtomicIntegerArray hits = new AtomicIntegerArray(100);
        Parallel.forRange(100, 1, (lo, hi) -> { for (int i = lo; i < hi; i++) hits.incrementAndGet(i); });
        for (int i = 0; i < 100; i++) assertEquals(1, hits.get(i));
    }

    /** Workers of {@code Parallel}'s current pool. */
    static java.util.List<Thread> workers() {
        return Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().startsWith("fastdms-worker-") && t.isAlive()).toList();
    }

    @Test
    void idleWorkersBlockInsteadOfPolling() throws Exception {
        Parallel.setThreads(3);
        Parallel.forRange(1000, 1, (lo, hi) -> {});
        var mx = java.lang.management.ManagementFactory.getThreadMXBean();
        Thread.sleep(100); // past any brief spin (and the old pool's workers have exited)
        java.util.List<Thread> ws = workers();
        assertEquals(2, ws.size(), "workers of a 3-thread pool: " + ws);
        long cpu0 = 0;
        for (Thread w : ws) {
            // parked without a timeout: nothing wakes them until the next loop
            assertEquals(Thread.State.WAITING, w.getState(), w.getName());
            cpu0 += mx.getThreadCpuTime(w.threadId());
        }
        Thread.sleep(500);
        long cpu1 = 0;
        for (Thread w : ws) cpu1 += mx.getThreadCpuTime(w.threadId());
        assertTrue(cpu1 - cpu0 < 2_000_000, "idle workers used " + (cpu1 - cpu0) / 1000 + " us of CPU in 0.5 s");
        // and they still wake up for the next loop
        AtomicIntegerArray hits = new AtomicIntegerArray(1000);
        Parallel.forRange(1000, 1, (lo, hi) -> { for (int i = lo; i < hi; i++) hits.incrementAndGet(i); });
        for (int i = 0; i < 1000; i++) assertEquals(1, hits.get(i));
    }

    @Test
    void theCallerBlocksWhileASlowWorkerFinishes() {
        Parallel.setThreads(2);
        var mx = java.lang.management.ManagementFactory.getThreadMXBean();
        Thread caller = Thread.currentThread();
        // two chunks: the caller's takes a moment, so the worker surely takes the other one and then sleeps
        long cpu0 = mx.getCurrentThreadCpuTime(), t0 = System.nanoTime();
        Parallel.forRange(2, 1, (lo, hi) -> {
            try { Thread.sleep(Thread.currentThread() == caller ? 20 : 400); } catch (InterruptedException e) { throw new RuntimeException(e); }
        });
        long cpu = mx.getCurrentThreadCpuTime() - cpu0, wall = System.nanoTime() - t0;
        assertTrue(wall >= 350_000_000L, "the worker's chunk ran: " + wall / 1_000_000 + " ms");
        assertTrue(cpu < 100_000_000L, "the caller used " + cpu / 1_000_000 + " ms of CPU waiting " + wall / 1_000_000 + " ms");
    }

    @Test
    void nestedLoopsRunInline() {
        Parallel.setThreads(2);
        AtomicIntegerArray hits = new AtomicIntegerArray(64 * 64);
        Parallel.forRange(64, 1, (lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                final int row = i;
                Parallel.forRange(64, 1, (a, b) -> { for (int j = a; j < b; j++) hits.incrementAndGet(row * 64 + j); });
            }
        });
        for (int i = 0; i < 64 * 64; i++) assertEquals(1, hits.get(i));
    }
}
