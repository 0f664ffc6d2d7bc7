package dev.fastdms.model.train;

import dev.fastdms.model.ModelConfig;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The whole student's gradient (distillation + compression term, soft DMS mask, zeroed decision channel) against
 * finite differences on tiny random models, for every tensor.
 */
class ModelGradientTest {
    static final int T = 7, WINDOW = 1;

    @Test void llamaLayout() { checkAll(TinyModels.config(false, false)); }

    @Test void qwen3QkNorm() { checkAll(TinyModels.config(true, true)); }

    /** The separate decision adapter: its projection, bias and norm, and through it the residual stream. */
    @Test void llamaLayoutWithAdapter() { checkAll(TinyModels.config(false, false), true); }

    @Test void qwen3QkNormWithAdapter() { checkAll(TinyModels.config(true, true), true); }

    /** The per-head compression term (train-dms --budget per-head). */
    @Test void perHeadBudget() { checkAll(TinyModels.config(false, false), true, true); }

    private static void checkAll(ModelConfig c) { checkAll(c, false); }

    private static void checkAll(ModelConfig c, boolean adapter) { checkAll(c, adapter, false); }

    private static void checkAll(ModelConfig c, boolean adapter, boolean perHead) {
        Params w = TinyModels.random(c, 11, adapter);
        int[] tokens = {1, 4, 4, 9, 0, 10, 3};
        // a gentle decision so α is far from 0 and 1 and the relaxation's gradient is exercised
        GumbelDecision decision = new GumbelDecision(2, 0.3, 0.8);
        SequencePass teacher = new SequencePass(c, null, T, null, WINDOW);
        teacher.forward(w, w.transposed(), tokens, 0, null);
        double[] teacherLogP = teacher.logProbs();
        double[] noise = FiniteDifference.random(new SplittableRandom(3), c.layers() * T * c.kvHeads(), 1);
        SequencePass student = new SequencePass(c, null, T, decision, WINDOW, adapter);
        double klScale = 1.0 / T, compScale = 0.7;
        double[] dLogits = new double[T * c.vocabSize()], dAlpha = new double[c.layers() * T * c.kvHeads()];
        student.forward(w, w.transposed(), tokens, 0, noise);
        // per head: a target between the heads' eviction rates, so that some heads are above it (no gradient) and some below
        double target = perHead ? midHeadRate(student, c) : 0.95;
        SequencePass.Loss loss = student.loss(teacherLogP, target, klScale, compScale, perHead, dLogits, dAlpha);
        assertTrue(loss.compression() > 0, "the compression term is active");
        if (perHead) {
            int below = 0;
            for (double a : dAlpha) if (a != 0) below++;
            assertTrue(below > 0 && below < c.layers() * (T - 1) * c.kvHeads(), "some heads below the target, some above: " + below);
            // a mean of hinges is at least the hinge of the mean; equal only if every head sits on the same side
            double global = student.loss(teacherLogP, target, klScale, compScale, false, new double[dLogits.length], new double[dAlpha.length]).compression();
            assertTrue(loss.compression() >= global - 1e-12, loss.compression() + " < " + global);
        }
        assertTrue(loss.klSum() > 0);
        Params grad = w.zerosLike();
        student.backward(w, dLogits, dAlpha, grad);
        java.util.function.DoubleSupplier f = () -> {
            student.forward(w, w.transposed(), tokens, 0, noise);
            SequencePass.Loss l = student.loss(teacherLogP, target, klScale, compScale, perHead, new double[dLogits.length], new double[dAlpha.length]);
            return klScale * l.klSum() + compScale * l.compression();
        };
        var ws = w.arrays();
        var gs = grad.arrays();
        String[] names = new String[ws.size()];
        int[] k = {0};
        w.forEach((n, a) -> names[k[0]++] = n);
        assertEquals(adapter, java.util.Arrays.asList(names).contains("blk.1.dms_alpha_norm.weight"));
        if (adapter) {
            // the adapter must get a gradient (a pass that ignored it would pass the finite differences trivially)
            double norm = 0;
            for (double g : grad.dmsAlpha[0]) norm += Math.abs(g);
            for (double g : grad.dmsAlphaNorm[0]) norm += Math.abs(g);
            assertTrue(norm > 1e-6, "adapter gradient " + norm);
        }
        for (int i = 0; i < ws.size(); i++) FiniteDifference.check(names[i], ws.get(i), gs.get(i), f, 1e-5);
        // embedding rows of tokens not in the sequence get nothing (tied: only through the head)
        if (!c.tiedEmbeddings()) for (int i = 0; i < c.dim(); i++) assertEquals(0, grad.embedding[2 * c.dim() + i]);
    }

    /** Halfway between the lowest and highest per-(layer, KV head) mean α of the pass's last forward. */
    private static double midHeadRate(SequencePass p, ModelConfig c) {
        double lo = 1, hi = 0;
        for (int l = 0; l < c.layers(); l++) {
            for (int g = 0; g < c.kvHeads(); g++) {
                double sum = 0;
                for (int t = 1; t < T; t++) sum += GumbelDecision.alpha(p.z[l][t * c.kvHeads() + g]);
                lo = Math.min(lo, sum / (T - 1));
                hi = Math.max(hi, sum / (T - 1));
            }
        }
        assertTrue(hi - lo > 1e-3, "heads' rates differ: " + lo + " .. " + hi);
        return (lo + hi) / 2;
    }
}
