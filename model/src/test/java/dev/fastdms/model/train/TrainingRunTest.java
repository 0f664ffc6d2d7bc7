package dev.fastdms.model.train;

import dev.fastdms.model.TestAssets;
import dev.fastdms.model.format.ModelFile;
import dev.fastdms.model.format.ModelLoader;
import org.junit.jupiter.api.Test;

import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** Short runs: training lowers the KL and moves the eviction rate toward the target; runs are reproducible on any thread count. */
class TrainingRunTest {
    /** stories260K's own greedy continuation from BOS, so the text is in its domain. */
    static int[] text(ModelFile mf, int n) {
        var w = new dev.fastdms.model.Weights(mf);
        var t = new dev.fastdms.model.Transformer(mf.config().withDms(null), w, 1);
        var seq = t.newSequence(dev.fastdms.cache.KvDtype.F32, null);
        int[] out = new int[n];
        float[] logits = new float[mf.config().vocabSize()];
        SplittableRandom r = new SplittableRandom(5);
        int tok = 1;
        for (int i = 0; i < n; i++) {
            out[i] = tok;
            if (seq.position() + 1 >= mf.config().contextLength()) { seq = t.newSequence(dev.fastdms.cache.KvDtype.F32, null); tok = 1; continue; }
            t.forward(seq, new int[]{tok}, 0, 1, logits, false);
            tok = sample(logits, r);
        }
        return out;
    }

    private static int sample(float[] logits, SplittableRandom r) {
        double max = Double.NEGATIVE_INFINITY, sum = 0;
        for (float l : logits) max = Math.max(max, l);
        double[] p = new double[logits.length];
        for (int i = 0; i < p.length; i++) sum += p[i] = Math.exp(logits[i] - max);
        double u = r.nextDouble() * sum;
        for (int i = 0; i < p.length; i++) if ((u -= p[i]) <= 0) return i;
        return p.length - 1;
    }

    @Test
    void lowersTheDistillationLossAndMovesEvictionTowardTheTarget() {
        try (ModelFile mf = ModelLoader.open(TestAssets.asset("models/stories260K/stories260K.bin"))) {
            int[] data = text(mf, 1500);
            TrainOptions o = new TrainOptions(4, 4, 60, 64, 4, 3e-3, 0.01, 1, 2);
            DmsTrainer trainer = new DmsTrainer(mf, data, o);
            double firstKl = 0, lastKl = 0, firstEviction = 0, lastEviction = 0, target = 0;
            for (int s = 0; s < o.steps(); s++) {
                TrainStats st = trainer.step();
                assertTrue(Double.isFinite(st.loss()) && st.compressionRatio() >= 1, st.toString());
                if (s < 5) { firstKl += st.kl() / 5; firstEviction += st.evictionRate() / 5; }
                if (s >= o.steps() - 5) { lastKl += st.kl() / 5; lastEviction += st.evictionRate() / 5; target = st.targetEvictionRate(); }
            }
            assertEquals(EvictionTarget.rate(4, 4, 64), target, 1e-12, "the target is reached and held");
            // the total loss carries the rising compression target; the distillation part must fall
            assertTrue(lastKl < 0.75 * firstKl, "KL " + firstKl + " -> " + lastKl);
            assertTrue(target - lastEviction < target - firstEviction - 0.03, "eviction rate " + firstEviction + " -> " + lastEviction + ", target " + target);
        }
    }

    @Test
    void sameSeedSameTensorsOnAnyThreadCount() {
        Params source = TinyModels.random(TinyModels.config(true, true), 3);
        int[] data = new SplittableRandom(9).ints(300, 0, 11).toArray();
        Map<String, float[]> a = run(source, data, 1, 1), b = run(source, data, 1, 1), c = run(source, data, 1, 2), d = run(source, data, 2, 1);
        for (String name : a.keySet()) {
            assertArrayEquals(a.get(name), b.get(name), name);
            assertArrayEquals(a.get(name), c.get(name), name + " with 2 threads");
        }
        assertFalse(java.util.Arrays.equals(a.get("blk.0.attn_q.weight"), d.get("blk.0.attn_q.weight")), "another seed trains differently");
        assertFalse(java.util.Arrays.equals(a.get("blk.0.attn_q.weight"), source.toFloats().get("blk.0.attn_q.weight")), "training changed the weights");
    }

    @Test
    void adapterSameSeedSameTensorsOnAnyThreadCount() {
        Params source = TinyModels.random(TinyModels.config(false, false), 3);
        int[] data = new SplittableRandom(9).ints(300, 0, 11).toArray();
        var adapter = TrainOptions.Decision.ADAPTER;
        Map<String, float[]> a = run(source, data, 1, 1, adapter), c = run(source, data, 1, 2, adapter);
        assertEquals(a.keySet(), c.keySet());
        for (String name : a.keySet()) assertArrayEquals(a.get(name), c.get(name), name + " with 2 threads");
        assertTrue(a.containsKey("blk.0.dms_alpha.weight"));
        assertFalse(run(source, data, 1, 1).containsKey("blk.0.dms_alpha.weight"), "the channel retrofit has no adapter");
    }

    private static Map<String, float[]> run(Params source, int[] data, long seed, int threads) {
        return run(source, data, seed, threads, TrainOptions.Decision.QUERY_CHANNEL);
    }

    private static Map<String, float[]> run(Params source, int[] data, long seed, int threads, TrainOptions.Decision decision) {
        DmsTrainer t = new DmsTrainer(source, data, new TrainOptions(2, 2, 4, 16, 3, 1e-2, 0.1, seed, threads, decision));
        for (int s = 0; s < 4; s++) t.step();
        return t.tensors();
    }
}
