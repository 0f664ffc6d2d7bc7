package dev.fastdms.cache;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** The compacted head against a brute-force model of the DMS rule over the full history. */
class HeadKvTest {
    static final int D = 16, NQ = 3;

    /** Masked softmax attention over the whole history in double precision: the definition. */
    static double[] reference(List<float[]> ks, List<float[]> vs, boolean[] ev, float[] q, int qOff, int h, int qpos, int w, float scale) {
        double[] s = new double[qpos + 1];
        double max = Double.NEGATIVE_INFINITY;
        for (int p = 0; p <= qpos; p++) {
            boolean vis = qpos - p <= w || !ev[p];
            if (!vis) { s[p] = Double.NEGATIVE_INFINITY; continue; }
            double d = 0;
            for (int i = 0; i < D; i++) d += (double) q[qOff + h * D + i] * ks.get(p)[i];
            s[p] = d * scale;
            max = Math.max(max, s[p]);
        }
        double sum = 0;
        for (int p = 0; p <= qpos; p++) { s[p] = s[p] == Double.NEGATIVE_INFINITY ? 0 : Math.exp(s[p] - max); sum += s[p]; }
        double[] out = new double[D];
        for (int p = 0; p <= qpos; p++) for (int i = 0; i < D; i++) out[i] += s[p] / sum * vs.get(p)[i];
        return out;
    }

    @ParameterizedTest
    @CsvSource({"0,true", "1,true", "5,true", "5,false", "40,true", "1000,false"})
    void decodeMatchesTheRuleAndKeepsOnlyWhatIsNeeded(int window, boolean nvidia) {
        SplittableRandom r = new SplittableRandom(window * 7L + (nvidia ? 1 : 0));
        HeadKv h = new HeadKv(D, 8, window, KvDtype.F32, null);
        List<float[]> ks = new ArrayList<>(), vs = new ArrayList<>();
        int T = 300;
        boolean[] ev = new boolean[T];
        float scale = 0.25f;
        for (int t = 0; t < T; t++) {
            float[] k = rnd(r, D), v = rnd(r, D);
            ks.add(k);
            vs.add(v);
            boolean flag = r.nextInt(3) > 0;
            int decided = nvidia ? t - 1 : t;
            if (nvidia && decided >= 0 && flag) { h.markEvicted(decided); ev[decided] = true; }
            h.reclaim(t);
            h.append(t, k, 0, v, 0);
            if (!nvidia && flag) { h.markEvicted(t); ev[t] = true; }
            float[] q = rnd(r, NQ * D);
            float[] out = new float[NQ * D];
            float[] scratch = new float[h.scratchSize(NQ)];
            h.attend(q, 0, NQ, t, scale, out, 0, scratch);
            for (int hh = 0; hh < NQ; hh++) {
                double[] want = reference(ks, vs, ev, q, 0, hh, t, window, scale);
                for (int i = 0; i < D; i++) assertEquals(want[i], out[hh * D + i], 1e-4, "t " + t + " head " + hh);
            }
            // what is stored: every token the next query could still see (plus, under NVIDIA's convention, the
            // undecided last token, which is visible anyway)
            h.reclaim(nvidia && window == 0 ? t : t + 1);
            int needed = 0;
            for (int p = 0; p <= t; p++) if (t + 1 - p <= window || !ev[p] || (nvidia && window == 0 && p == t)) needed++;
            assertEquals(needed, h.live(), "live at " + t);
        }
        assertEquals(T, h.seen());
        if (window < 100) assertTrue(h.capacity() < 200, "evicted slots are reused: capacity " + h.capacity());
    }

    @Test
    void prefillThenQueriesEqualsTokenByToken() {
        SplittableRandom r = new SplittableRandom(11);
        int T = 64, w = 6;
        HeadKv a = new HeadKv(D, 16, w), b = new HeadKv(D, 16, w);
        float[][] k = new float[T][], v = new float[T][], q = new float[T][];
        boolean[] ev = new boolean[T];
        for (int t = 0; t < T; t++) { k[t] = rnd(r, D); v[t] = rnd(r, D); q[t] = rnd(r, NQ * D); ev[t] = r.nextBoolean(); }
        for (int t = 0; t < T; t++) { a.append(t, k[t], 0, v[t], 0); if (ev[t]) a.markEvicted(t); }
        for (int t = 0; t < T; t++) {
            b.reclaim(t);
            b.append(t, k[t], 0, v[t], 0);
            if (ev[t]) b.markEvicted(t);
            float[] oa = new float[NQ * D], ob = new float[NQ * D];
            a.attend(q[t], 0, NQ, t, 0.3f, oa, 0, new float[a.scratchSize(NQ)]);
            b.attend(q[t], 0, NQ, t, 0.3f, ob, 0, new float[b.scratchSize(NQ)]);
            assertArrayEquals(oa, ob, 1e-5f, "query " + t);
        }
        a.reclaim(T);
        b.reclaim(T);
        assertEquals(a.live(), b.live());
    }

    @ParameterizedTest
    @EnumSource(KvDtype.class)
    void attentionInEveryDtypeIsCloseToF32(KvDtype t) {
        SplittableRandom r = new SplittableRandom(3);
        HeadKv f = new HeadKv(64, 32, 4, KvDtype.F32, null), x = new HeadKv(64, 32, 4, t, null);
        for (int p = 0; p < 100; p++) {
            float[] k = rnd(r, 64), v = rnd(r, 64);
            f.append(p, k, 0, v, 0);
            x.append(p, k, 0, v, 0);
        }
        float[] q = rnd(r, 4 * 64), of = new float[4 * 64], ox = new float[4 * 64];
        f.attend(q, 0, 4, 99, 0.125f, of, 0, new float[f.scratchSize(4)]);
        x.attend(q, 0, 4, 99, 0.125f, ox, 0, new float[x.scratchSize(4)]);
        double tol = switch (t) { case F32 -> 0; case F16 -> 2e-3; case BF16 -> 1e-2; case FP8_E4M3 -> 6e-2; case Q8 -> 2e-2; };
        for (int i = 0; i < of.length; i++) assertEquals(of[i], ox[i], tol + 1e-7, t + " " + i);
    }

    @Test
    void accountingGrowsInBlocksAndBudgetFailsCleanly() {
        KvBudget budget = new KvBudget(10_000);
        CompactKvCache c = new CompactKvCache(2, 2, 16, KvDtype.FP8_E4M3, 0, 8, budget);
        float[] kv = new float[16];
        long before = c.bytesAllocated();
        for (int l = 0; l < 2; l++) for (int g = 0; g < 2; g++) c.head(l, g).append(0, kv, 0, kv, 0);
        long one = c.bytesAllocated() - before;
        // one block of 8 slots per head: (16 + 4 scale) bytes per K and V row, 4 position, 1 flag, 4 pending ring
        assertEquals(4L * 8 * (2 * (16 + 4) + 9), one);
        assertEquals(2L * 2 * 2 * 16 * 2 * 1, c.denseBf16Bytes());
        KvBudgetExceededException e = assertThrows(KvBudgetExceededException.class, () -> {
            for (int p = 1; p < 1000; p++) for (int l = 0; l < 2; l++) for (int g = 0; g < 2; g++) c.head(l, g).append(p, kv, 0, kv, 0);
        });
        assertTrue(e.getMessage().contains("budget"));
        assertTrue(budget.used() <= budget.limit());
        c.release();
        assertEquals(0, budget.used());
    }

    @Test
    void compressionRatioIsSeenOverRetainedAveragedOverHeads() {
        CompactKvCache c = new CompactKvCache(1, 2, 8, KvDtype.F32, 0);
        float[] kv = new float[8];
        for (int p = 0; p < 10; p++) {
            c.head(0, 0).append(p, kv, 0, kv, 0);
            c.head(0, 1).append(p, kv, 0, kv, 0);
            if (p % 2 == 0) c.head(0, 1).markEvicted(p);
        }
        c.head(0, 1).reclaim(10);
        assertEquals(10, c.head(0, 0).live());
        assertEquals(5, c.head(0, 1).live());
        // mean of live/seen = (1 + 0.5) / 2 = 0.75
        assertEquals(1 / 0.75, c.compressionRatio(), 1e-12);
    }

    static float[] rnd(SplittableRandom r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) r.nextGaussian();
        return a;
    }
}
