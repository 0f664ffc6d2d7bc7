package dev.fastdms.model.serving;

import dev.fastdms.cache.KvDtype;
import dev.fastdms.model.Engine;
import dev.fastdms.model.KvSettings;
import dev.fastdms.model.ProgressListener;
import dev.fastdms.model.Sampler;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Benchmark (not a test): how many sequences of CTX tokens the scheduler admits at once under one KV budget, dense
 * BF16 against DMS + FP8 with a forced eviction fraction (as {@code bench --dms-evict-fraction}). Prompts fill the
 * caches with random keys and values (as {@code bench --fill random}), so the prefill of many long prompts does not
 * take hours on a small machine; admission, growth checks and preemption are the real ones. Prints one JSON line.
 *
 * <pre>java ... dev.fastdms.model.serving.AdmissionBench MODEL BUDGET_BYTES CTX REQUESTS dense|dms [EVICT_FRACTION]</pre>
 */
public final class AdmissionBench {
    public static void main(String[] a) throws Exception {
        Path model = Path.of(a[0]);
        long budget = Long.parseLong(a[1]);
        int ctx = Integer.parseInt(a[2]), requests = Integer.parseInt(a[3]);
        boolean dms = a[4].equals("dms");
        double fraction = a.length > 5 ? Double.parseDouble(a[5]) : 0.9;
        Engine.Options o = new Engine.Options(model, null, 0, 0, "jvm", dms ? KvDtype.FP8_E4M3 : KvDtype.BF16, dms ? "dms" : "none",
                dms ? new KvSettings.DmsOverrides(256, null, null, null) : null, 0, 0, budget);
        try (Engine e = Engine.open(o, ProgressListener.NONE)) {
            Scheduler s = new Scheduler(e, new Scheduler.Options(Engine.MAX_ROWS, requests, Engine.MAX_ROWS, dms ? fraction : -1, true));
            SplittableRandom r = new SplittableRandom(1);
            List<CompletableFuture<Completion>> done = new ArrayList<>();
            long peakBytes = 0;
            for (int i = 0; i < requests; i++) {
                int[] prompt = new int[ctx];
                for (int j = 0; j < ctx; j++) prompt[j] = r.nextInt(e.config().vocabSize());
                CompletableFuture<Completion> f = new CompletableFuture<>();
                done.add(f);
                // an iteration fills about two sequences, so this many tokens keep the first ones decoding until the
                // last admitted one joins
                s.submit(new Request(prompt, requests / 2 + 16, new Sampler(Sampler.Settings.greedy()), null, new Request.Listener() {
                    @Override public boolean onToken(int id) { return true; }
                    @Override public void onFinish(Completion c) { f.complete(c); }
                }));
            }
            long t0 = System.nanoTime();
            s.start();
            while (!done.stream().allMatch(CompletableFuture::isDone)) {
                Thread.sleep(50);
                peakBytes = Math.max(peakBytes, s.stats().kvBytesInUse());
            }
            SchedulerStats st = s.stats();
            s.close();
            int kvBudget = 0;
            for (var f : done) if (f.get(1, TimeUnit.SECONDS).reason() == FinishReason.KV_BUDGET) kvBudget++;
            System.out.printf("{\"config\":\"%s\",\"ctx\":%d,\"requests\":%d,\"kv_budget\":%d,\"max_concurrent_decoding\":%d,"
                            + "\"peak_kv_bytes\":%d,\"preemptions\":%d,\"finished_kv_budget\":%d,\"seconds\":%.1f}%n",
                    e.kvSettings().describe() + (dms ? ",evict_fraction=" + fraction : ""), ctx, requests, budget,
                    st.maxDecodeBatch(), peakBytes, st.preemptions(), kvBudget, (System.nanoTime() - t0) / 1e9);
        }
    }
}
