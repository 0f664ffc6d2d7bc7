package dev.fastdms.cache;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The compacted head against a brute-force model that keeps the whole uncompressed history: random runs of chunked
 * appends (chunk size 1 is decode), late DMS flags under both conventions, extra late flags on still-pending tokens,
 * immediate policy removals, reclaims, and queries at every position of each chunk. After every operation the stored
 * tokens must be exactly those the rule still needs, and every attention output must equal a double-precision masked
 * softmax over the full history (of the rows as stored, so every dtype is checked exactly, not just F32).
 */
class DmsReferenceModelTest {

    /** The history and the rule, independent of HeadKv. */
    static final class Reference {
        final int dim, window;
        final List<float[]> keys = new ArrayList<>(), values = new ArrayList<>();
        final List<Boolean> flagged = new ArrayList<>(), removed = new ArrayList<>();
        int pendingFrom = Integer.MIN_VALUE; // positions below this are past every future query's window

        Reference(int dim, int window) { this.dim = dim; this.window = window; }

        boolean visible(int p, int q) {
            return !removed.get(p) && p <= q && (q - p <= window || !flagged.get(p));
        }

        void reclaim(int nextQuery) { pendingFrom = Math.max(pendingFrom, nextQuery - window); }

        /** Tokens the cache must still hold: not removed, and not (flagged and out of every future window). */
        Set<Integer> needed() {
            Set<Integer> s = new HashSet<>();
            for (int p = 0; p < keys.size(); p++) if (!removed.get(p) && !(flagged.get(p) && p < pendingFrom)) s.add(p);
            return s;
        }

        double[] attend(float[] q, int qOff, int h, int qpos, float scale) {
            int n = keys.size();
            double[] s = new double[n];
            double max = Double.NEGATIVE_INFINITY;
            for (int p = 0; p < n; p++) {
                if (!visible(p, qpos)) { s[p] = Double.NEGATIVE_INFINITY; continue; }
                double d = 0;
                for (int i = 0; i < dim; i++) d += (double) q[qOff + h * dim + i] * keys.get(p)[i];
                s[p] = d * scale;
                max = Math.max(max, s[p]);
            }
            double[] out = new double[dim];
            if (max == Double.NEGATIVE_INFINITY) return out;
            double sum = 0;
            for (int p = 0; p < n; p++) { s[p] = s[p] == Double.NEGATIVE_INFINITY ? 0 : Math.exp(s[p] - max); sum += s[p]; }
            for (int p = 0; p < n; p++) if (s[p] != 0) for (int i = 0; i < dim; i++) out[i] += s[p] / sum * values.get(p)[i];
            return out;
        }
    }

    @ParameterizedTest(name = "dim {0} window {1} nvidia {2} {3} block {4}")
    @CsvSource({
            "16, 0, true, F32, 8",
            "16, 0, false, F32, 8",
            "16, 1, true, F32, 8",
            "8, 3, false, F32, 5",
            "12, 5, true, F32, 16",
            "32, 16, false, F16, 32",
            "64, 8, true, BF16, 64",
            "64, 8, false, FP8_E4M3, 64",
            "128, 4, true, Q8, 256",
            "40, 6, false, Q8, 33",
            "64, 1000, true, F32, 64",
    })
    void compactedHeadEqualsTheRuleOverTheFullHistory(int dim, int window, boolean nvidia, KvDtype dtype, int block) {
        SplittableRandom r = new SplittableRandom(dim * 31L + window * 7L + (nvidia ? 1 : 0) + dtype.ordinal() * 101L);
        HeadKv h = new HeadKv(dim, block, window, dtype, null);
        Reference ref = new Reference(dim, window);
        int T = 260, t = 0;
        float[] tmp = new float[dim];
        while (t < T) {
            int chunk = r.nextInt(4) == 0 ? 1 + r.nextInt(24) : 1; // mostly decode steps, sometimes a prefill chunk
            chunk = Math.min(chunk, T - t);
            for (int p = t; p < t + chunk; p++) {
                boolean decide = r.nextInt(3) > 0; // about two thirds of tokens get evicted
                if (nvidia && p > 0 && decide) { h.markEvicted(p - 1); ref.flagged.set(p - 1, true); }
                float[] k = HeadKvTest.rnd(r, dim), v = HeadKvTest.rnd(r, dim);
                int slot = h.append(p, k, 0, v, 0);
                float[] ks = new float[dim], vs = new float[dim];
                h.readKey(slot, ks, 0);
                h.readValue(slot, vs, 0);
                ref.keys.add(ks);
                ref.values.add(vs);
                ref.flagged.add(false);
                ref.removed.add(false);
                if (!nvidia && decide) { h.markEvicted(p); ref.flagged.set(p, true); }
            }
            // an occasional extra late flag on a token that is still pending
            if (r.nextInt(5) == 0) {
                int p = Math.max(Math.max(0, ref.pendingFrom), t + chunk - 1 - r.nextInt(window + 1));
                h.markEvicted(p);
                ref.flagged.set(p, true);
            }
            // an occasional immediate removal, as a training-free policy would do
            if (r.nextInt(6) == 0 && h.live() > 0) {
                int slot = r.nextInt(h.live());
                ref.removed.set(h.position(slot), true);
                h.removeSlot(slot);
            }
            assertStored(h, ref, "after appending " + t + ".." + (t + chunk - 1));
            // queries at every position of the chunk, in a random order, each under the rule at its own position
            int nQ = 1 + r.nextInt(6);
            float scale = (float) (1 / Math.sqrt(dim));
            float[] scratch = new float[h.scratchSize(nQ) + r.nextInt(3)];
            for (int i = 0; i < chunk; i++) {
                int q = t + r.nextInt(chunk);
                float[] query = HeadKvTest.rnd(r, nQ * dim + 3);
                float[] out = new float[nQ * dim + 5];
                h.attend(query, 3, nQ, q, scale, out, 5, scratch);
                for (int hh = 0; hh < nQ; hh++) {
                    double[] want = ref.attend(query, 3, hh, q, scale);
                    for (int j = 0; j < dim; j++) assertEquals(want[j], out[5 + hh * dim + j], 2e-5 * (1 + Math.abs(want[j])), "query " + q + " head " + hh + " [" + j + "]");
                }
                for (int s = 0; s < h.live(); s++) assertEquals(ref.visible(h.position(s), q), h.visible(s, q));
            }
            t += chunk;
            // free what the next query cannot see (under NVIDIA's convention with window 0 the last token's
            // decision is still to come, so not past it)
            int next = nvidia && window == 0 ? t - 1 : t;
            h.reclaim(next);
            ref.reclaim(next);
            assertStored(h, ref, "after reclaim(" + next + ")");
        }
        assertEquals(T, h.seen());
        if (window < 100) assertTrue(h.capacity() <= 2 * block + 120 + window, "slots are reused: capacity " + h.capacity());
    }

    static void assertStored(HeadKv h, Reference ref, String when) {
        Set<Integer> stored = new HashSet<>();
        for (int s = 0; s < h.live(); s++) assertTrue(stored.add(h.position(s)), "a position is stored once " + when);
        assertEquals(ref.needed(), stored, "stored tokens " + when);
        for (int s = 0; s < h.live(); s++) assertEquals(ref.flagged.get(h.position(s)), h.isEvicted(s), "flag of slot " + s + " " + when);
    }
}
