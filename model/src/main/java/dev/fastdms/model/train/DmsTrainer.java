package dev.fastdms.model.train;

import dev.fastdms.cache.DmsConfig;
import dev.fastdms.model.ModelConfig;
import dev.fastdms.model.format.ModelFile;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Retrofits a Llama/Qwen3 model with learned DMS (Łańcucki et al., 2025): all weights train with AdamW on logit
 * distillation from the frozen original plus a compression term, decisions relaxed by a Gumbel-sigmoid.
 *
 * <p>Loss per step: mean over tokens of KL(teacher ‖ student) plus, per sequence, the paper's one-sided term
 * max(0, target·L·H − Σ α) per token, i.e. L·H · max(0, target − mean α) over L layers and H KV heads (only too little
 * eviction is penalised; weighted as a sum over layers and heads it holds the target, as a plain mean it let the KL
 * hold the rate well below it), averaged over the batch; with {@link TrainOptions.Budget#PER_HEAD} the hinge is taken per
 * (layer, KV head) and averaged, so that no head can keep everything while the others evict for it. The target eviction rate
 * is the one giving the engine's CR = targetCr at seqLen ({@link EvictionTarget}). Decisions are σ((logit + logistic
 * noise) / 0.1), NVIDIA's temperature; alpha scale and offset stay at the DmsConfig defaults. The logit is the
 * borrowed query channel, or with {@link TrainOptions.Decision#ADAPTER} a new projection of the normed layer input
 * that starts at zero (logit -offset: the student begins as the teacher). Sequences run in parallel, each
 * into its own gradient, summed in batch order: results do not depend on the thread count.
 */
public final class DmsTrainer {
    private final ModelConfig config;
    private final int[] data;
    private final TrainOptions o;
    private final DmsConfig dms;
    private final Params teacher, student;
    private final Params.Transposed teacherT;
    private final Params[] grads;
    private final SequencePass[] teacherPasses, studentPasses;
    private final AdamW optimizer;
    private final EvictionTarget target;
    private final SplittableRandom order;
    private final ExecutorService pool;
    private int step;

    /**
     * @param source      the model to retrofit (also the frozen teacher)
     * @param trainTokens training token stream (already tokenized, BOS included where documents start)
     */
    public DmsTrainer(ModelFile source, int[] trainTokens, TrainOptions options) {
        this(Params.load(source), trainTokens, options);
    }

    DmsTrainer(Params source, int[] trainTokens, TrainOptions options) {
        config = source.c;
        o = options;
        if (trainTokens.length < o.seqLen()) {
            throw new IllegalArgumentException("training text has " + trainTokens.length + " tokens, fewer than one sequence of " + o.seqLen());
        }
        if (o.seqLen() > config.contextLength()) {
            throw new IllegalArgumentException("sequence length " + o.seqLen() + " exceeds the model's context of " + config.contextLength());
        }
        for (int t : trainTokens) {
            if (t < 0 || t >= config.vocabSize()) throw new IllegalArgumentException("token id " + t + " outside the vocabulary of " + config.vocabSize());
        }
        data = trainTokens;
        dms = new DmsConfig(o.window(), DmsConfig.DEFAULT_ALPHA_SCALE, DmsConfig.DEFAULT_ALPHA_OFFSET, DmsConfig.Convention.NVIDIA);
        target = new EvictionTarget(o.targetCr(), o.window(), o.seqLen(), o.steps());
        if (source.hasAdapter()) throw new IllegalArgumentException("the source already has a DMS decision adapter");
        teacher = source;
        boolean adapter = o.decision() == TrainOptions.Decision.ADAPTER;
        if (adapter) {
            student = source.withNewAdapter();
        } else {
            student = source.zerosLike();
            List<double[]> from = teacher.arrays(), to = student.arrays();
            for (int i = 0; i < from.size(); i++) System.arraycopy(from.get(i), 0, to.get(i), 0, from.get(i).length);
        }
        teacherT = teacher.transposed();
        GumbelDecision decision = new GumbelDecision(dms.alphaScale(), dms.alphaOffset(), GumbelDecision.TAU);
        grads = new Params[o.batch()];
        teacherPasses = new SequencePass[o.batch()];
        studentPasses = new SequencePass[o.batch()];
        for (int b = 0; b < o.batch(); b++) {
            grads[b] = student.zerosLike();
            teacherPasses[b] = new SequencePass(config, source.ropeFreqs, o.seqLen(), null, o.window());
            studentPasses[b] = new SequencePass(config, source.ropeFreqs, o.seqLen(), decision, o.window(), adapter);
        }
        optimizer = new AdamW(student, o.lr(), o.weightDecay(), o.steps());
        order = new SplittableRandom(o.seed());
        pool = o.threads() == 1 ? null : Executors.newFixedThreadPool(o.threads(), r -> {
            Thread t = new Thread(r, "dms-train");
            t.setDaemon(true);
            return t;
        });
    }

    /** Runs one optimizer step. */
    public TrainStats step() {
        long start = System.nanoTime();
        int s = step++;
        int B = o.batch(), T = o.seqLen();
        double targetRate = target.at(s);
        int[] starts = new int[B];
        for (int b = 0; b < B; b++) starts[b] = order.nextInt(data.length - T + 1);
        Params.Transposed studentT = student.transposed();
        double klScale = 1.0 / ((double) B * T), compressionScale = (double) config.layers() * config.kvHeads() / B;
        SequencePass.Loss[] losses = new SequencePass.Loss[B];
        List<Runnable> work = new ArrayList<>();
        for (int b = 0; b < B; b++) {
            final int row = b;
            work.add(() -> {
                SequencePass tp = teacherPasses[row], sp = studentPasses[row];
                tp.forward(teacher, teacherT, data, starts[row], null);
                double[] teacherLogP = tp.logProbs();
                sp.forward(student, studentT, data, starts[row], noise(s, row));
                double[] dLogits = new double[T * config.vocabSize()], dAlpha = new double[config.layers() * T * config.kvHeads()];
                losses[row] = sp.loss(teacherLogP, targetRate, klScale, compressionScale, o.budget() == TrainOptions.Budget.PER_HEAD, dLogits, dAlpha);
                Params g = grads[row];
                for (double[] a : g.arrays()) java.util.Arrays.fill(a, 0);
                sp.backward(student, dLogits, dAlpha, g);
            });
        }
        run(work);
        Params total = grads[0];
        List<double[]> sum = total.arrays();
        for (int b = 1; b < B; b++) {
            List<double[]> gb = grads[b].arrays();
            for (int k = 0; k < sum.size(); k++) {
                double[] a = sum.get(k), x = gb.get(k);
                for (int i = 0; i < a.length; i++) a[i] += x[i];
            }
        }
        optimizer.step(total);
        double kl = 0, comp = 0, alpha = 0, kept = 0, minHead = 0;
        int decisions = 0, heads = 0;
        for (SequencePass.Loss l : losses) {
            kl += l.klSum();
            comp += l.compression();
            alpha += l.alphaSum();
            decisions += l.decisions();
            kept += l.keptFractionSum();
            heads += l.heads();
            minHead += l.minHeadAlpha() / B;
        }
        kl /= (double) B * T;
        comp *= (double) config.layers() * config.kvHeads() / B; // as weighted in the loss
        return new TrainStats(s, kl + comp, kl, comp, alpha / decisions, targetRate, heads / kept, (System.nanoTime() - start) / 1e9, minHead);
    }

    /** Logistic noise of step s, batch row b: [layer][T][kvHeads]. */
    double[] noise(int s, int b) {
        int L = config.layers(), T = o.seqLen(), kvh = config.kvHeads();
        double[] n = new double[L * T * kvh];
        for (int l = 0; l < L; l++) {
            for (int t = 0; t < T; t++) {
                for (int g = 0; g < kvh; g++) n[(l * T + t) * kvh + g] = GumbelDecision.logisticNoise(o.seed(), s, b, l, t, g);
            }
        }
        return n;
    }

    private void run(List<Runnable> work) {
        if (pool == null) {
            work.forEach(Runnable::run);
            return;
        }
        List<Future<?>> fs = new ArrayList<>();
        for (Runnable r : work) fs.add(pool.submit(r));
        try {
            for (Future<?> f : fs) f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("training step interrupted", e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException re) throw re;
            if (e.getCause() instanceof Error er) throw er;
            throw new IllegalStateException(e.getCause());
        }
    }

    /**
     * Every tensor of the trained model under the canonical names of {@link dev.fastdms.model.ModelConfig}
     * (row-major float32, in the source file's layout, e.g. GGUF Llama's permuted q/k rows), ready to write back.
     */
    public Map<String, float[]> tensors() { return student.toFloats(); }

    /** The weights being trained (tests). */
    Params student() { return student; }

    /** The frozen original (tests). */
    Params teacher() { return teacher; }

    public TrainOptions options() { return o; }

    /** The DMS parameters the checkpoint must carry (window, alpha scale, alpha offset, NVIDIA convention). */
    public DmsConfig dms() { return dms; }
}
