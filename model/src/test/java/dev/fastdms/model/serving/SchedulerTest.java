package dev.fastdms.model.serving;

import dev.fastdms.cache.KvDtype;
import dev.fastdms.model.ContextOverflowException;
import dev.fastdms.model.Engine;
import dev.fastdms.model.KvSettings;
import dev.fastdms.model.ProgressListener;
import dev.fastdms.model.Sampler;
import dev.fastdms.model.TestAssets;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

class SchedulerTest {
    /** Collects a request's tokens and its completion. */
    static final class Collector implements Request.Listener {
        final List<Integer> ids = new ArrayList<>();
        final CompletableFuture<Completion> done = new CompletableFuture<>();
        volatile int cancelAfter = -1;
        Request request;

        @Override public boolean onToken(int id) {
            ids.add(id);
            if (ids.size() == cancelAfter) request.cancel();
            return true;
        }
        @Override public void onFinish(Completion c) { done.complete(c); }

        int[] tokens() { return ids.stream().mapToInt(Integer::intValue).toArray(); }
        Completion await() throws Exception { return done.get(60, TimeUnit.SECONDS); }
    }

    static Engine open(long budgetBytes, String policy, KvSettings.DmsOverrides dms) {
        return Engine.open(new Engine.Options(TestAssets.asset("models/stories260K/stories260K-f32.gguf"), null, 0, 0, "jvm",
                KvDtype.F32, policy, dms, 0, 0, budgetBytes), ProgressListener.NONE);
    }

    static int[] randomPrompt(SplittableRandom r, int len) {
        int[] p = new int[len];
        p[0] = 1;
        for (int i = 1; i < len; i++) p[i] = 3 + r.nextInt(500);
        return p;
    }

    static Collector submit(Scheduler s, Engine e, int[] prompt, int max) {
        Collector c = new Collector();
        c.request = new Request(prompt, max, new Sampler(Sampler.Settings.greedy()), e::isStop, c);
        s.submit(c.request);
        return c;
    }

    /** Each request alone through generate's code path (Engine.generate on a fresh sequence; the scheduler must be stopped). */
    static int[] alone(Engine e, int[] prompt, int max) {
        var seq = e.newSequence();
        try {
            return e.generate(seq, prompt, max, Sampler.Settings.greedy(), null, ProgressListener.NONE).ids();
        } finally {
            seq.kv().release();
        }
    }

    @Test
    void batchedGreedyEqualsEachRequestAlone() throws Exception {
        for (String policy : new String[]{null, "dms"}) {
            var dms = "dms".equals(policy) ? new KvSettings.DmsOverrides(8, 100f, 1f, null) : null;
            try (Engine e = open(64L << 20, policy, dms)) {
                SplittableRandom r = new SplittableRandom(7);
                int n = 12;
                int[][] prompts = new int[n][];
                int[] max = new int[n];
                for (int i = 0; i < n; i++) { prompts[i] = randomPrompt(r, 1 + r.nextInt(150)); max[i] = 5 + r.nextInt(80); }
                Scheduler s = new Scheduler(e, new Scheduler.Options(8, 64, Engine.MAX_ROWS, -1, false));
                List<Collector> cs = new ArrayList<>();
                for (int i = 0; i < n; i++) cs.add(submit(s, e, prompts[i], max[i]));
                s.start();
                for (Collector c : cs) c.await();
                SchedulerStats st = s.stats();
                s.close();
                assertEquals(0, e.kvSettings().budget().used(), "every sequence's KV is returned");
                assertEquals(8, st.maxDecodeBatch(), "8 sequences should have decoded together");
                assertEquals(0, st.preemptions());
                for (int i = 0; i < n; i++) {
                    assertArrayEquals(alone(e, prompts[i], max[i]), cs.get(i).tokens(), "request " + i + " policy " + policy);
                    Completion c = cs.get(i).await();
                    assertEquals(prompts[i].length, c.promptTokens());
                    assertEquals(cs.get(i).ids.size(), c.completionTokens());
                }
            }
        }
    }

    @Test
    void tightBudgetPreemptsAndRecomputesWithoutExceedingIt() throws Exception {
        // one block of 256 tokens per head is ~374 KB for stories260K in F32: 3 sequences of one block fit, not 3 of two
        long budget = 1_200_000;
        try (Engine e = open(budget, null, null)) {
            SplittableRandom r = new SplittableRandom(11);
            Scheduler s = new Scheduler(e, Scheduler.Options.of(6, 64)).start();
            List<Collector> cs = new ArrayList<>();
            int[][] prompts = new int[5][];
            for (int i = 0; i < 5; i++) { prompts[i] = randomPrompt(r, 10 + i); cs.add(submit(s, e, prompts[i], 300)); }
            for (Collector c : cs) {
                Completion done = c.await();
                assertEquals(FinishReason.LENGTH, done.reason(), "note: " + done.note());
                assertEquals(300, c.ids.size());
            }
            SchedulerStats st = s.stats();
            s.close();
            assertTrue(st.preemptions() > 0, "the budget should have forced preemptions");
            assertEquals(0, e.kvSettings().budget().used());
            assertEquals(3, st.maxDecodeBatch(), "three sequences of one block fit, never four");
            // a request never preempted ran exactly as alone
            for (int i = 0; i < 5; i++) {
                if (cs.get(i).await().preemptions() == 0) assertArrayEquals(alone(e, prompts[i], 300), cs.get(i).tokens(), "request " + i);
            }
        }
    }

    @Test
    void sequenceThatCannotFitAloneFinishesWithKvBudget() throws Exception {
        try (Engine e = open(200_000, null, null)) { // less than one block per head
            Scheduler s = new Scheduler(e, Scheduler.Options.of(4, 4)).start();
            Collector c = submit(s, e, new int[]{1, 400, 401}, 10);
            Completion done = c.await();
            assertEquals(FinishReason.KV_BUDGET, done.reason());
            assertTrue(done.note().contains("KV budget"), done.note());
            assertEquals(0, e.kvSettings().budget().used());
            s.close();
        }
    }

    @Test
    void zeroTokensFinishesAtOnceWithLength() throws Exception {
        try (Engine e = open(64L << 20, null, null)) {
            Scheduler s = new Scheduler(e, Scheduler.Options.of(2, 2)).start();
            Collector c = submit(s, e, new int[]{1, 5, 6}, 0);
            Completion done = c.await();
            assertEquals(FinishReason.LENGTH, done.reason());
            assertEquals(0, done.completionTokens());
            assertTrue(c.ids.isEmpty());
            s.close();
        }
    }

    @Test
    void cancelledRequestFreesItsMemoryAndOthersGoOn() throws Exception {
        try (Engine e = open(64L << 20, null, null)) {
            Scheduler s = new Scheduler(e, Scheduler.Options.of(4, 4)).start();
            Collector cancelled = new Collector();
            cancelled.cancelAfter = 5;
            cancelled.request = new Request(new int[]{1, 300}, 400, new Sampler(Sampler.Settings.greedy()), null, cancelled);
            s.submit(cancelled.request);
            Collector other = submit(s, e, new int[]{1, 301}, 20);
            assertEquals(FinishReason.CANCELLED, cancelled.await().reason());
            assertTrue(cancelled.ids.size() < 400);
            other.await();
            assertEquals(0, e.kvSettings().budget().used());
            s.close();
            assertArrayEquals(alone(e, new int[]{1, 301}, 20), other.tokens());
        }
    }

    @Test
    void fullQueueAndShutdownRejectAndTooLongPromptOverflows() throws Exception {
        try (Engine e = open(64L << 20, null, null)) {
            Scheduler s = new Scheduler(e, Scheduler.Options.of(1, 1)); // not started: nothing leaves the queue
            submit(s, e, new int[]{1, 5}, 3);
            var full = assertThrows(RejectedException.class, () -> submit(s, e, new int[]{1, 6}, 3));
            assertEquals(RejectedException.Why.QUEUE_FULL, full.why());
            assertThrows(ContextOverflowException.class, () -> submit(s, e, new int[e.config().contextLength()], 3));
            s.start();
            s.shutdown(Duration.ofSeconds(5));
            var down = assertThrows(RejectedException.class, () -> submit(s, e, new int[]{1, 6}, 3));
            assertEquals(RejectedException.Why.SHUTTING_DOWN, down.why());
            assertTrue(s.stopped());
        }
    }
}
