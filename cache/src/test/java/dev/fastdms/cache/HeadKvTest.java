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

    /**
     * Prefill style (append a chunk with its flags arriving after the whole chunk, query every position of the chunk,
     * then reclaim) gives the same outputs and the same live counts as token-by-token decode.
     */
    @ParameterizedTest
    @CsvSource({"0,true", "0,false", "1,true", "3,false", "7,true", "20,false"})
    void chunkedPrefillEqualsTokenByToken(int w, boolean nvidia) {
        SplittableRandom r = new SplittableRandom(w * 13L + (nvidia ? 5 : 0));
        int T = 150, d = 24;
        HeadKv chunked = new HeadKv(d, 16, w, KvDtype.F32, null), single = new HeadKv(d, 16, w, KvDtype.F32, null);
        float[][] k = new float[T][], v = new float[T][], q = new float[T][];
        boolean[] decision = new boolean[T]; // decision carried by token t (for t-1 under NVIDIA's convention, for t under FastDMS's)
        for (int t = 0; t < T; t++) { k[t] = rnd(r, d); v[t] = rnd(r, d); q[t] = rnd(r, NQ * d); decision[t] = r.nextInt(4) > 0; }
        float[] oa = new float[NQ * d], ob = new float[NQ * d];
        // token by token
        float[][] want = new float[T][];
        int[] liveAfter = new int[T];
        for (int t = 0; t < T; t++) {
            if (nvidia && t > 0 && decision[t]) single.markEvicted(t - 1);
            single.reclaim(t);
            single.append(t, k[t], 0, v[t], 0);
            if (!nvidia && decision[t]) single.markEvicted(t);
            single.attend(q[t], 0, NQ, t, 0.3f, ob, 0, new float[single.scratchSize(NQ)]);
            want[t] = ob.clone();
            single.reclaim(nvidia && w == 0 ? t : t + 1);
            liveAfter[t] = single.live();
        }
        // chunks
        for (int a = 0; a < T; ) {
            int b = Math.min(T, a + 1 + r.nextInt(40));
            for (int t = a; t < b; t++) chunked.append(t, k[t], 0, v[t], 0);
            for (int t = a; t < b; t++) {
                int target = nvidia ? t - 1 : t;
                if (decision[t] && target >= 0) chunked.markEvicted(target);
            }
            for (int t = b - 1; t >= a; t--) { // any order: each query sees what the rule allows at its position
                chunked.attend(q[t], 0, NQ, t, 0.3f, oa, 0, new float[chunked.scratchSize(NQ)]);
                assertArrayEquals(want[t], oa, 1e-5f, "query " + t + " in chunk " + a + ".." + (b - 1));
            }
            chunked.reclaim(nvidia && w == 0 ? b - 1 : b);
            assertEquals(liveAfter[b - 1], chunked.live(), "live after chunk ending at " + (b - 1));
            a = b;
        }
    }

    @ParameterizedTest
    @CsvSource({"F32,64", "F16,8", "F16,64", "BF16,32", "BF16,128", "FP8_E4M3,8", "FP8_E4M3,64", "FP8_E4M3,128", "Q8,32", "Q8,64", "Q8,20"})
    void attentionInEveryDtypeIsCloseToF32(KvDtype t, int dim) {
        SplittableRandom r = new SplittableRandom(3);
        HeadKv f = new HeadKv(dim, 32, 4, KvDtype.F32, null), x = new HeadKv(dim, 32, 4, t, null);
        for (int p = 0; p < 100; p++) {
            float[] k = rnd(r, dim), v = rnd(r, dim);
            f.append(p, k, 0, v, 0);
            x.append(p, k, 0, v, 0);
        }
        float[] q = rnd(r, 4 * dim), of = new float[4 * dim], ox = new float[4 * dim];
        float scale = (float) (1 / Math.sqrt(dim));
        f.attend(q, 0, 4, 99, scale, of, 0, new float[f.scratchSize(4)]);
        x.attend(q, 0, 4, 99, scale, ox, 0, new float[x.scratchSize(4)]);
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
