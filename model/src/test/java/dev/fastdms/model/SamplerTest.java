package dev.fastdms.model;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

class SamplerTest {
    static float[] logits() { return new float[]{1f, 5f, 3f, 4.9f, -2f, 0f}; }

    @Test
    void greedyIsArgmax() {
        assertEquals(1, new Sampler(Sampler.Settings.greedy()).sample(logits(), 6, null, 0));
    }

    @Test
    void sameSeedSameDraws() {
        var s = new Sampler.Settings(1.0f, 0, 1f, 0f, 1f, 64, 99);
        Sampler a = new Sampler(s), b = new Sampler(s);
        for (int i = 0; i < 100; i++) assertEquals(a.sample(logits(), 6, null, 0), b.sample(logits(), 6, null, 0));
    }

    @Test
    void topKTopPMinPRestrictTheCandidates() {
        Set<Integer> seen = new HashSet<>();
        Sampler k2 = new Sampler(new Sampler.Settings(2f, 2, 1f, 0f, 1f, 64, 1));
        for (int i = 0; i < 300; i++) seen.add(k2.sample(logits(), 6, null, 0));
        assertEquals(Set.of(1, 3), seen);
        seen.clear();
        // p(1) ~ p(3) ~ 0.45 at T=1: top-p 0.5 keeps two tokens
        Sampler p = new Sampler(new Sampler.Settings(1f, 0, 0.5f, 0f, 1f, 64, 2));
        for (int i = 0; i < 300; i++) seen.add(p.sample(logits(), 6, null, 0));
        assertEquals(Set.of(1, 3), seen);
        seen.clear();
        Sampler m = new Sampler(new Sampler.Settings(1f, 0, 1f, 0.5f, 1f, 64, 3));
        for (int i = 0; i < 300; i++) seen.add(m.sample(logits(), 6, null, 0));
        assertEquals(Set.of(1, 3), seen);
    }

    @Test
    void repetitionPenaltyDemotesSeenTokens() {
        Sampler s = new Sampler(new Sampler.Settings(0f, 0, 1f, 0f, 2f, 64, 0));
        assertEquals(3, s.sample(logits(), 6, new int[]{1}, 1), "5/2 < 4.9: the repeated token loses");
        assertThrows(IllegalArgumentException.class, () -> new Sampler.Settings(-1f, 0, 1f, 0f, 1f, 64, 0));
        assertThrows(IllegalArgumentException.class, () -> new Sampler.Settings(1f, 0, 0f, 0f, 1f, 64, 0));
    }

    /**
     * The sampler ranks only what the settings need (partial selection); its draws equal those of a plain reference
     * that sorts the whole vocabulary (boxed, stable) and follows the documented rule, on a large random vocabulary
     * with ties, for every kind of truncation.
     */
    @Test
    void partialRankingDrawsWhatAFullSortDraws() {
        SplittableRandom r = new SplittableRandom(5);
        int vocab = 5000;
        float[][] settings = {{0.8f, 0, 1f, 0f}, {1f, 40, 1f, 0f}, {1.2f, 0, 0.9f, 0f}, {0.7f, 0, 1f, 0.05f}, {1f, 0, 0.999f, 0f},
                {1f, 300, 0.95f, 0.01f}, {2f, 0, 0.97f, 0.0001f}};
        for (float[] st : settings) {
            Sampler.Settings set = new Sampler.Settings(st[0], (int) st[1], st[2], st[3], 1f, 64, 77);
            Sampler fast = new Sampler(set);
            SplittableRandom ref = new SplittableRandom(77);
            for (int draw = 0; draw < 40; draw++) {
                float[] logits = new float[vocab];
                for (int i = 0; i < vocab; i++) logits[i] = (float) (r.nextGaussian() * 3) ;
                for (int i = 0; i < 50; i++) logits[r.nextInt(vocab)] = logits[r.nextInt(vocab)]; // ties
                int want = reference(logits.clone(), set, ref);
                assertEquals(want, fast.sample(logits, vocab, null, 0), Arrays.toString(st) + " draw " + draw);
            }
        }
    }

    static int reference(float[] logits, Sampler.Settings s, SplittableRandom random) {
        int vocab = logits.length;
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) max = Math.max(max, l);
        double t = s.temperature();
        if (s.topK() == 0 && s.topP() == 1f && s.minP() == 0f) {
            double sum = 0;
            float[] p = new float[vocab];
            for (int i = 0; i < vocab; i++) { double e = Math.exp((logits[i] - max) / t); p[i] = (float) e; sum += e; }
            return pick(p, null, vocab, sum, random);
        }
        Integer[] idx = new Integer[vocab];
        for (int i = 0; i < vocab; i++) idx[i] = i;
        Arrays.sort(idx, (a, b) -> Float.compare(logits[b], logits[a]));
        int n = s.topK() > 0 ? Math.min(s.topK(), vocab) : vocab;
        double sum = 0;
        for (int i = 0; i < (s.topK() > 0 ? n : vocab); i++) sum += Math.exp((logits[s.topK() > 0 ? idx[i] : i] - max) / t);
        float[] p = new float[n];
        for (int i = 0; i < n; i++) p[i] = (float) (Math.exp((logits[idx[i]] - max) / t) / sum);
        if (s.minP() > 0) {
            int m = 1;
            while (m < n && p[m] >= s.minP() * p[0]) m++;
            n = m;
        }
        if (s.topP() < 1f) {
            double cum = 0;
            int m = 0;
            while (m < n) { cum += p[m++]; if (cum >= s.topP()) break; }
            n = m;
        }
        return pick(p, idx, n, -1, random);
    }

    static int pick(float[] p, Integer[] idx, int n, double total, SplittableRandom random) {
        if (total < 0) { total = 0; for (int i = 0; i < n; i++) total += p[i]; }
        double r = random.nextDouble() * total, acc = 0;
        for (int i = 0; i < n; i++) {
            acc += p[i];
            if (r < acc) return idx == null ? i : idx[i];
        }
        return idx == null ? n - 1 : idx[n - 1];
    }

    @Test
    void rankKeysOrderLikeFloatCompareThenIndex() {
        float[] v = {0f, -0f, 1f, -1f, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.MIN_VALUE, -Float.MIN_VALUE, 3.5f, 3.5f};
        for (int i = 0; i < v.length; i++) {
            for (int j = 0; j < v.length; j++) {
                int want = Float.compare(v[j], v[i]) != 0 ? Float.compare(v[j], v[i]) : Integer.compare(i, j);
                assertEquals(Integer.signum(want), Long.signum(Long.compare(Sampler.rankKey(v[i], i), Sampler.rankKey(v[j], j))), v[i] + " vs " + v[j]);
            }
        }
    }
}
