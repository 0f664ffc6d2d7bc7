package dev.fastdms.model;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks the next token from logits: greedy when temperature is 0, otherwise repetition penalty → temperature →
 * top-k → softmax → min-p → top-p (nucleus) → a draw from a seeded generator (same seed, same text).
 *
 * @param repetitionPenalty   > 1 discourages tokens already in the context (CTRL-style: positive logits divided,
 *                            negative multiplied); 1 disables it
 * @param repetitionWindow    how many of the most recent tokens the penalty looks at
 */
public final class Sampler {
    public record Settings(float temperature, int topK, float topP, float minP, float repetitionPenalty,
                           int repetitionWindow, long seed) {
        public static Settings greedy() { return new Settings(0f, 0, 1f, 0f, 1f, 64, 0L); }

        public Settings {
            // written so that NaN fails every test
            if (!(temperature >= 0 && temperature < Float.POSITIVE_INFINITY)) throw new IllegalArgumentException("temperature must be a finite number >= 0");
            if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("top-p must be in (0, 1]");
            if (!(minP >= 0 && minP < 1)) throw new IllegalArgumentException("min-p must be in [0, 1)");
            if (topK < 0) throw new IllegalArgumentException("top-k must be >= 0");
            if (!(repetitionPenalty > 0 && repetitionPenalty < Float.POSITIVE_INFINITY)) throw new IllegalArgumentException("repetition penalty must be a finite number > 0");
        }
    }

    private final Settings s;
    private final SplittableRandom random;
    private int[] order = new int[0];
    private float[] probs = new float[0];

    public Sampler(Settings settings) {
        this.s = settings;
        this.random = new SplittableRandom(settings.seed());
    }

    public Settings settings() { return s; }

    /** True when the pick is the argmax of the raw logits (a device backend may then pick the token itself). */
    public boolean isPlainArgmax() { return s.temperature() == 0f && s.repetitionPenalty() == 1f; }

    /** Index of the largest logit (lowest index on ties). */
    public static int argmax(float[] logits, int off, int n) {
        int best = 0;
        float max = logits[off];
        for (int i = 1; i < n; i++) if (logits[off + i] > max) { max = logits[off + i]; best = i; }
        return best;
    }

    /**
     * Samples from logits[0..vocab) (modified in place by the penalty and temperature).
     * {@code history[0..historyLen)} are the tokens of the context so far (for the repetition penalty).
     */
    public int sample(float[] logits, int vocab, int[] history, int historyLen) {
        if (s.repetitionPenalty() != 1f && history != null) {
            for (int i = Math.max(0, historyLen - s.repetitionWindow()); i < historyLen; i++) {
                int t = history[i];
                if (t < 0 || t >= vocab) continue;
                logits[t] = logits[t] > 0 ? logits[t] / s.repetitionPenalty() : logits[t] * s.repetitionPenalty();
            }
        }
        if (s.temperature() == 0f) return argmax(logits, 0, vocab);
        if (order.length < vocab) { order = new int[vocab]; probs = new float[vocab]; }
        // Candidates sorted by logit, descending; top-k cuts the list.
        Integer[] idx = new Integer[vocab];
        for (int i = 0; i < vocab; i++) idx[i] = i;
        Arrays.sort(idx, (a, b) -> Float.compare(logits[b], logits[a]));
        int n = s.topK() > 0 ? Math.min(s.topK(), vocab) : vocab;
        double max = logits[idx[0]], sum = 0;
        for (int i = 0; i < n; i++) {
            order[i] = idx[i];
            double p = Math.exp((logits[idx[i]] - max) / s.temperature());
            probs[i] = (float) p;
            sum += p;
        }
        for (int i = 0; i < n; i++) probs[i] /= (float) sum;
        if (s.minP() > 0) {
            float floor = s.minP() * probs[0];
            int m = 1;
            while (m < n && probs[m] >= floor) m++;
            n = m;
        }
        if (s.topP() < 1f) {
            double cum = 0;
            int m = 0;
            while (m < n) { cum += probs[m++]; if (cum >= s.topP()) break; }
            n = m;
        }
        double total = 0;
        for (int i = 0; i < n; i++) total += probs[i];
        double r = random.nextDouble() * total, acc = 0;
        for (int i = 0; i < n; i++) {
            acc += probs[i];
            if (r < acc) return order[i];
        }
        return order[n - 1];
    }
}
