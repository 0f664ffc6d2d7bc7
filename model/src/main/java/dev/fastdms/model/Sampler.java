package dev.fastdms.model;

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
    private long[] keys = new long[0];
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
     *
     * <p>Candidates are ranked by logit, descending (lower index first on ties), and only as many as the settings
     * need are ranked: the top k for top-k, a head grown until min-p or top-p has cut it otherwise, none when
     * nothing truncates (the draw then walks the vocabulary in index order). Probabilities are
     * exp((logit - max) / T) normalised over the top k, or over the whole vocabulary without top-k.
     */
    public int sample(float[] logits, int vocab, int[] history, int historyLen) {
        if (s.repetitionPenalty() != 1f && history != null) {
            for (int i = Math.max(0, historyLen - s.repetitionWindow()); i < historyLen; i++) {
                int t = history[i];
                if (t < 0 || t >= vocab) continue;
                logits[t] = logits[t] > 0 ? logits[t] / s.repetitionPenalty() : logits[t] * s.repetitionPenalty();
            }
        }
        int top = argmax(logits, 0, vocab);
        if (s.temperature() == 0f) return top;
        if (keys.length < vocab) { keys = new long[vocab]; order = new int[vocab]; probs = new float[vocab]; }
        double max = logits[top], t = s.temperature();
        boolean truncates = s.topP() < 1f || s.minP() > 0f;
        if (s.topK() == 0 && !truncates) { // the whole distribution, unranked
            double sum = 0;
            for (int i = 0; i < vocab; i++) { double p = Math.exp((logits[i] - max) / t); probs[i] = (float) p; sum += p; }
            for (int i = 0; i < vocab; i++) order[i] = i;
            return draw(vocab, sum);
        }
        for (int i = 0; i < vocab; i++) keys[i] = rankKey(logits[i], i);
        double sum = 0;
        if (s.topK() == 0) for (int i = 0; i < vocab; i++) sum += Math.exp((logits[i] - max) / t);
        int k = s.topK() > 0 ? Math.min(s.topK(), vocab) : Math.min(64, vocab);
        while (true) {
            rank(k, vocab);
            if (s.topK() > 0) { // normalised over the top k, summed in rank order
                sum = 0;
                for (int i = 0; i < k; i++) sum += Math.exp((logits[order[i]] - max) / t);
            }
            for (int i = 0; i < k; i++) probs[i] = (float) (Math.exp((logits[order[i]] - max) / t) / sum);
            int n = truncate(k);
            if (n >= 0) return draw(n, -1);
            if (k == vocab || s.topK() > 0) return draw(k, -1);
            k = (int) Math.min(vocab, 4L * k);
        }
    }

    /**
     * The candidates left after min-p and top-p among the ranked head probs[0..k), or -1 when neither has cut it yet
     * (every head candidate passes min-p and their mass is below top-p).
     */
    private int truncate(int k) {
        float floor = s.minP() * probs[0];
        double cum = 0;
        for (int i = 0; i < k; i++) {
            if (s.minP() > 0 && probs[i] < floor) return i;
            cum += probs[i];
            if (s.topP() < 1f && cum >= s.topP()) return i + 1;
        }
        return s.minP() > 0 || s.topP() < 1f ? -1 : k;
    }

    /** Draws among order[0..n) with weights probs[0..n); {@code total} is their sum when known, else negative. */
    private int draw(int n, double total) {
        if (total < 0) {
            total = 0;
            for (int i = 0; i < n; i++) total += probs[i];
        }
        double r = random.nextDouble() * total, acc = 0;
        for (int i = 0; i < n; i++) {
            acc += probs[i];
            if (r < acc) return order[i];
        }
        return order[n - 1];
    }

    /** A long that orders by logit descending (as Float.compare), then by index ascending. */
    static long rankKey(float logit, int index) {
        int f = Float.floatToIntBits(logit);
        int ascending = f ^ ((f >> 31) & 0x7FFFFFFF);
        return ((long) ~ascending << 32) | index;
    }

    /** order[0..k) = the k best-ranked candidates, in rank order: a selection over all keys, then a sort of k. */
    private void rank(int k, int vocab) {
        if (k < vocab) select(keys, 0, vocab - 1, k);
        java.util.Arrays.sort(keys, 0, k);
        for (int i = 0; i < k; i++) order[i] = (int) keys[i];
    }

    /** Rearranges a[lo..hi] so that its k smallest values come first (Hoare partition, median-of-three pivots). */
    static void select(long[] a, int lo, int hi, int k) {
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            long x = a[lo], y = a[mid], z = a[hi];
            long pivot = Math.max(Math.min(x, y), Math.min(Math.max(x, y), z));
            int i = lo, j = hi;
            while (i <= j) {
                while (a[i] < pivot) i++;
                while (a[j] > pivot) j--;
                if (i <= j) { long tmp = a[i]; a[i] = a[j]; a[j] = tmp; i++; j--; }
            }
            if (k - 1 <= j) hi = j;
            else if (k - 1 >= i) lo = i;
            else return;
        }
    }
}
