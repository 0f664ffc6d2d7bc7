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
