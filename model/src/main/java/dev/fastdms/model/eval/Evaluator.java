package dev.fastdms.model.eval;

import dev.fastdms.model.Sampler;
import dev.fastdms.model.Sequence;
import dev.fastdms.model.ForwardPass;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

/**
 * Quality of compressed KV caches against the full cache, on a token stream, over sliding windows as llama.cpp's
 * perplexity tool does: each window of {@code ctx} tokens is a fresh sequence; the first window scores every
 * prediction in it, each later one (starting {@code stride} tokens after the previous) scores only the predictions no
 * earlier window scored, so every position 1..T-1 is scored exactly once. With {@code ctx >= T} one window covers the
 * whole input.
 *
 * <p>The full-cache pass runs once and is shared by every configuration compared against it; it may run on another
 * model of the same vocabulary (a retrofitted model scored against the model it came from).
 */
public final class Evaluator {
    /** A named way to make a sequence (a KV policy, dtype, DMS parameters). */
    public record Config(String name, Supplier<Sequence> newSequence) {}

    /**
     * @param kld              mean KL(full ‖ compressed) of the next-token distributions, nats per scored token
     * @param tokenMatch       fraction of scored positions where both argmaxes agree
     * @param compressionRatio tokens seen / tokens retained, averaged over layers, heads and windows
     * @param kvBytes          largest KV bytes allocated at the end of a window (payload + metadata)
     * @param kvBytesDenseBf16 what a dense BF16 cache of the largest window takes
     */
    public record Result(String config, double ppl, double pplFull, double kld, double tokenMatch, double compressionRatio,
                         long kvBytes, long kvBytesDenseBf16, int scoredTokens) {}

    /** Called after each window with (windows done, windows total). */
    public interface Progress { void update(int done, int total); }

    private final ForwardPass model, reference;

    public Evaluator(ForwardPass model) { this(model, model); }

    /**
     * The full-cache baseline from {@code reference} (e.g. the model a DMS retrofit came from), the compressed
     * configurations from {@code model}; both must share one vocabulary.
     */
    public Evaluator(ForwardPass model, ForwardPass reference) {
        if (model.config().vocabSize() != reference.config().vocabSize()) {
            throw new IllegalArgumentException("the reference model's vocabulary has " + reference.config().vocabSize()
                    + " tokens, the model's " + model.config().vocabSize() + ": they cannot be compared");
        }
        this.model = model;
        this.reference = reference;
    }

    public List<Result> run(int[] tokens, int ctx, int stride, Supplier<Sequence> full, List<Config> configs, Progress progress) {
        int T = tokens.length;
        if (T < 2) throw new IllegalArgumentException("need at least 2 tokens to score, got " + T);
        if (ctx < 2) throw new IllegalArgumentException("--ctx must be at least 2");
        if (ctx > model.config().contextLength()) {
            throw new IllegalArgumentException("--ctx " + ctx + " exceeds the model's context of " + model.config().contextLength());
        }
        if (ctx > reference.config().contextLength()) {
            throw new IllegalArgumentException("--ctx " + ctx + " exceeds the reference model's context of " + reference.config().contextLength());
        }
        if (stride < 1 || stride > ctx) throw new IllegalArgumentException("--stride must be in 1..ctx");
        int V = model.config().vocabSize();
        var c = model.config();
        int n = configs.size();
        double[] nll = new double[n], kld = new double[n], crSum = new double[n];
        long[] match = new long[n], bytes = new long[n];
        double nllFull = 0;
        int scored = 0, windows = 0;
        long denseMax = 0;
        List<int[]> bounds = new ArrayList<>();
        for (int start = 0, scoredTo = 0; ; start += stride) {
            int end = Math.min(T, start + ctx);
            bounds.add(new int[]{start, end, Math.max(scoredTo, start + 1)});
            scoredTo = end;
            if (end == T) break;
        }
        float[] fullLogits = new float[Math.min(ctx, T) * V];
        float[] cmpLogits = new float[Math.min(ctx, T) * V];
        for (int[] b : bounds) {
            int start = b[0], end = b[1], firstScored = b[2], len = end - start;
            Sequence fs = full.get();
            reference.forward(fs, tokens, start, len, fullLogits, true);
            fs.kv().release(); // device backends hold a fixed number of sequence slots
            // predictions of tokens [firstScored, end) come from positions [firstScored-1, end-1) of the window
            double[][] fullLp = new double[end - firstScored][];
            for (int p = firstScored; p < end; p++) {
                double[] lp = logSoftmax(fullLogits, (p - 1 - start) * V, V);
                fullLp[p - firstScored] = lp;
                nllFull -= lp[tokens[p]];
            }
            for (int k = 0; k < n; k++) {
                Sequence s = configs.get(k).newSequence().get();
                model.forward(s, tokens, start, len, cmpLogits, true);
                for (int p = firstScored; p < end; p++) {
                    int row = (p - 1 - start) * V;
                    double[] lp = logSoftmax(cmpLogits, row, V);
                    double[] lf = fullLp[p - firstScored];
                    nll[k] -= lp[tokens[p]];
                    double kl = 0;
                    for (int j = 0; j < V; j++) kl += Math.exp(lf[j]) * (lf[j] - lp[j]);
                    kld[k] += kl;
                    if (Sampler.argmax(fullLogits, row, V) == Sampler.argmax(cmpLogits, row, V)) match[k]++;
                }
                crSum[k] += s.kv().compressionRatio();
                bytes[k] = Math.max(bytes[k], s.kv().bytesAllocated());
                s.kv().release();
            }
            denseMax = Math.max(denseMax, 2L * c.layers() * c.kvHeads() * c.headDim() * 2L * len);
            scored += end - firstScored;
            windows++;
            if (progress != null) progress.update(windows, bounds.size());
        }
        List<Result> out = new ArrayList<>();
        for (int k = 0; k < n; k++) {
            out.add(new Result(configs.get(k).name(), Math.exp(nll[k] / scored), Math.exp(nllFull / scored), kld[k] / scored,
                    match[k] / (double) scored, crSum[k] / windows, bytes[k], denseMax, scored));
        }
        return out;
    }

    /** log softmax of x[off .. off+n) in double precision. */
    public static double[] logSoftmax(float[] x, int off, int n) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) max = Math.max(max, x[off + i]);
        double sum = 0;
        for (int i = 0; i < n; i++) sum += Math.exp(x[off + i] - max);
        double lse = max + Math.log(sum);
        double[] r = new double[n];
        for (int i = 0; i < n; i++) r[i] = x[off + i] - lse;
        return r;
    }
}
