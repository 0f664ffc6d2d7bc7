package dev.fastdms.cache;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.management.ManagementFactory;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** Bytes, block growth, slot reuse, compression ratio, the shared budget, and the allocation-free decode path. */
class AccountingTest {
    static final int D = 32;

    @ParameterizedTest
    @EnumSource(KvDtype.class)
    void bytesGrowInWholeBlocksOnly(KvDtype t) {
        int block = 16;
        HeadKv h = new HeadKv(D, block, 0, t, null);
        long row = KvStore.of(t, D, 1).rowBytes();
        long perBlock = block * (2 * row + 4 + 1 + 4); // K and V rows, position, flag, pending ring entry
        float[] kv = new float[D];
        assertEquals(0, h.bytesAllocated());
        for (int p = 0; p < 3 * block; p++) {
            h.append(p, kv, 0, kv, 0);
            assertEquals((p / block + 1) * perBlock, h.bytesAllocated(), "after token " + p);
            assertEquals((p / block + 1) * block, h.capacity());
        }
    }

    @Test
    void reclaimedSlotsAreReusedSoSteadyStateDoesNotGrow() {
        HeadKv h = new HeadKv(D, 64, 8, KvDtype.FP8_E4M3, null);
        float[] kv = new float[D], q = new float[2 * D], out = new float[2 * D];
        long bytes = 0;
        int cap = 0;
        for (int t = 0; t < 20_000; t++) {
            h.reclaim(t);
            h.append(t, kv, 0, kv, 0);
            if (t % 8 != 0 && t >= 4 && t < 2000 || t >= 2000) h.markEvicted(t); // after 2000 every token is evicted
            if (t == 3000) { bytes = h.bytesAllocated(); cap = h.capacity(); }
            if (t > 3000) assertEquals(bytes, h.bytesAllocated(), "no growth in steady state (token " + t + ")");
        }
        h.attend(q, 0, 2, 19_999, 1f, out, 0, new float[h.scratchSize(2)]);
        assertEquals(cap, h.capacity());
        // kept: the 4 first, one in 8 of the next ~2000, and the window
        assertEquals(4 + (2000 - 8) / 8 + 9, h.live());
    }

    @Test
    void compressionRatioLiveCountsAndDenseEquivalent() {
        CompactKvCache c = new CompactKvCache(CompactKvCache.Spec.of(2, 2, 8, KvDtype.BF16, 0).withBlockTokens(4));
        float[] kv = new float[8];
        for (int p = 0; p < 12; p++) {
            for (int l = 0; l < 2; l++) for (int g = 0; g < 2; g++) {
                HeadKv h = c.head(l, g);
                h.reclaim(p);
                h.append(p, kv, 0, kv, 0);
                // head (l, g) evicts every token whose p % (1 + l*2 + g) != 0: keeps 1/1, 1/2, 1/3, 1/4 of them
                if (p % (1 + l * 2 + g) != 0) h.markEvicted(p);
            }
        }
        for (int l = 0; l < 2; l++) for (int g = 0; g < 2; g++) c.head(l, g).reclaim(12);
        assertArrayEquals(new int[][]{{12, 6}, {4, 3}}, c.liveCounts());
        assertEquals(12 + 6 + 4 + 3, c.liveTokens());
        assertEquals(12, c.seenTokens());
        // 1 / mean(live/seen) = 1 / ((1 + 1/2 + 1/3 + 1/4) / 4)
        assertEquals(4 / (1 + 0.5 + 1 / 3.0 + 0.25), c.compressionRatio(), 1e-12);
        assertEquals(2L * 2 * 2 * 8 * 2 * 12, c.denseBf16Bytes());
        long sum = 0;
        for (int l = 0; l < 2; l++) for (int g = 0; g < 2; g++) sum += c.head(l, g).bytesAllocated();
        assertEquals(sum, c.bytesAllocated());
        assertEquals(1.0, new CompactKvCache(1, 1, 8, KvDtype.F32, 0).compressionRatio(), "an empty cache has CR 1");
    }

    @Test
    void sharedBudgetThrowsItsOwnExceptionAndStaysConsistent() {
        KvBudget budget = new KvBudget(20_000);
        CompactKvCache a = new CompactKvCache(CompactKvCache.Spec.of(1, 2, D, KvDtype.Q8, 0).withBlockTokens(8).withBudget(budget));
        CompactKvCache b = new CompactKvCache(CompactKvCache.Spec.of(1, 2, D, KvDtype.Q8, 0).withBlockTokens(8).withBudget(budget));
        float[] kv = new float[D];
        int p = 0;
        KvBudgetExceededException e = null;
        try {
            for (; p < 10_000; p++) for (CompactKvCache c : new CompactKvCache[]{a, b}) for (int g = 0; g < 2; g++) c.head(0, g).append(p, kv, 0, kv, 0);
        } catch (KvBudgetExceededException x) {
            e = x;
        }
        assertNotNull(e, "the budget must stop growth");
        assertTrue(p > 8, "several blocks fit first");
        assertFalse(e.getMessage().contains("\n"), "one line");
        assertTrue(e.getMessage().contains("budget") && e.getMessage().contains("20000"), e.getMessage());
        assertEquals(a.bytesAllocated() + b.bytesAllocated(), budget.used(), "the budget holds exactly what is allocated");
        assertTrue(budget.used() <= budget.limit());
        a.release();
        b.release();
        assertEquals(0, budget.used());
    }

    @Test
    void scoreTrackingIsChargedToo() {
        KvBudget budget = new KvBudget(1 << 20);
        HeadKv h = new HeadKv(D, 8, 0, KvDtype.F16, budget);
        float[] kv = new float[D];
        for (int p = 0; p < 10; p++) h.append(p, kv, 0, kv, 0);
        long before = h.bytesAllocated();
        h.trackScores(HeadKv.ScoreMode.ACCUMULATED_ATTENTION, 0);
        assertEquals(before + 2 * 8 * 4, h.bytesAllocated());
        assertEquals(h.bytesAllocated(), budget.used());
    }

    /**
     * In steady state (DMS evicting, slots reused) a decode step — flag, reclaim, append, attend — allocates
     * nothing once the JIT has compiled it. Measured with the thread's allocation counter; retried while the JIT
     * may still be warming up.
     */
    @ParameterizedTest
    @EnumSource(KvDtype.class)
    void decodeStepAllocatesNothing(KvDtype t) {
        var mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        assumeAllocationCounter(mx);
        int dim = 64, nQ = 4;
        HeadKv h = new HeadKv(dim, 64, 16, t, null);
        SplittableRandom r = new SplittableRandom(1);
        float[] k = HeadKvTest.rnd(r, dim), v = HeadKvTest.rnd(r, dim), q = HeadKvTest.rnd(r, nQ * dim), out = new float[nQ * dim];
        float[] scratch = new float[8192];
        int[] pos = {0};
        Runnable step = () -> {
            int p = pos[0]++;
            if (p > 700) h.markEvicted(p - 1); // NVIDIA convention; the first 700 tokens stay for ever
            h.reclaim(p);
            h.append(p, k, 0, v, 0);
            h.attend(q, 0, nQ, p, 0.125f, out, 0, scratch);
        };
        long tid = Thread.currentThread().threadId();
        long best = Long.MAX_VALUE;
        long deadline = System.nanoTime() + 60_000_000_000L; // C2 can take this long on a loaded 2-core machine
        for (int round = 0; round < 200 && best > 0 && System.nanoTime() < deadline; round++) {
            for (int i = 0; i < 2000; i++) step.run(); // warm up / grow to steady state
            long b0 = mx.getThreadAllocatedBytes(tid);
            for (int i = 0; i < 500; i++) step.run();
            best = Math.min(best, mx.getThreadAllocatedBytes(tid) - b0);
        }
        assertEquals(700 + 16 + 1, h.live(), "steady state: the kept tokens, the window and the undecided last token");
        assertEquals(0, best, "bytes allocated by 500 decode steps (" + t + ")");
    }

    static void assumeAllocationCounter(com.sun.management.ThreadMXBean mx) {
        org.junit.jupiter.api.Assumptions.assumeTrue(mx.isThreadAllocatedMemorySupported() && mx.isThreadAllocatedMemoryEnabled());
    }
}
