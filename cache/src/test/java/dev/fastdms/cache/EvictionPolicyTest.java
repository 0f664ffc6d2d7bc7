package dev.fastdms.cache;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.HashSet;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

class EvictionPolicyTest {
    static final int D = 8;

    static Set<Integer> positions(HeadKv h) {
        Set<Integer> s = new HashSet<>();
        for (int i = 0; i < h.live(); i++) s.add(h.position(i));
        return s;
    }

    /** Runs T decode steps through one head with random keys and queries, enforcing after each. */
    static HeadKv run(EvictionPolicy p, int T, long seed, float[][] keysOut) {
        SplittableRandom r = new SplittableRandom(seed);
        HeadKv h = new HeadKv(D, 16, 0, KvDtype.F32, null);
        p.prepare(h, 1);
        for (int t = 0; t < T; t++) {
            float[] k = new float[D], v = new float[D], q = new float[2 * D];
            for (int i = 0; i < D; i++) { k[i] = (float) (r.nextGaussian() * (1 + t % 5)); v[i] = (float) r.nextGaussian(); }
            for (int i = 0; i < 2 * D; i++) q[i] = (float) r.nextGaussian();
            if (keysOut != null) keysOut[t] = k;
            h.append(t, k, 0, v, 0);
            h.attend(q, 0, 2, t, 0.35f, new float[2 * D], 0, new float[h.scratchSize(2)]);
            p.enforce(h, t + 1, 1);
        }
        return h;
    }

    @ParameterizedTest
    @EnumSource(value = EvictionPolicy.Kind.class, names = {"SINK_WINDOW", "KNORM", "TOVA", "H2O"})
    void keepsTheBudgetAndTheRecentWindow(EvictionPolicy.Kind kind) {
        EvictionPolicy p = new EvictionPolicy(EvictionPolicy.Spec.of(kind, 4.0, 0));
        int T = 400;
        HeadKv h = run(p, T, kind.ordinal(), null);
        assertEquals((int) Math.ceil(T / 4.0), h.live(), "tokens seen / CR");
        Set<Integer> kept = positions(h);
        for (int t = T - 16; t < T; t++) assertTrue(kept.contains(t), "recent token " + t + " kept");
        if (kind == EvictionPolicy.Kind.SINK_WINDOW) {
            for (int t = 0; t < 4; t++) assertTrue(kept.contains(t), "sink " + t);
            // sinks + the newest tokens: exactly a contiguous tail
            int tail = h.live() - 4;
            for (int t = T - tail; t < T; t++) assertTrue(kept.contains(t), "window token " + t);
        }
        assertTrue(h.capacity() <= 128, "slots are reused: " + h.capacity());
    }

    @Test
    void knormEvictsTheLargestKeys() {
        EvictionPolicy p = new EvictionPolicy(EvictionPolicy.Spec.of(EvictionPolicy.Kind.KNORM, 0, 40));
        float[][] keys = new float[300][];
        HeadKv h = run(p, 300, 9, keys);
        // every evicted token older than the recent window had a norm at least that of every kept old token... at its
        // eviction time; at the end the kept old tokens are among the lowest norms of all old tokens seen
        double maxKept = 0;
        Set<Integer> kept = positions(h);
        for (int t : kept) if (t < 300 - 16) maxKept = Math.max(maxKept, norm(keys[t]));
        int lowerEvicted = 0;
        for (int t = 0; t < 300 - 16; t++) if (!kept.contains(t) && norm(keys[t]) < maxKept) lowerEvicted++;
        assertTrue(lowerEvicted < 30, "knorm keeps low-norm keys (" + lowerEvicted + " lower-norm keys were evicted)");
    }

    @Test
    void tovaEvictsWhatTheCurrentQueryIgnores() {
        HeadKv h = new HeadKv(D, 16, 0, KvDtype.F32, null);
        EvictionPolicy p = new EvictionPolicy(new EvictionPolicy.Spec(EvictionPolicy.Kind.TOVA, 0, 3, 0, 1, 1, 1));
        p.prepare(h, 1);
        float[] v = new float[D];
        for (int t = 0; t < 4; t++) {
            float[] k = new float[D];
            k[0] = t == 2 ? -5f : 1f; // token 2's key points away from the query
            h.append(t, k, 0, v, 0);
        }
        float[] q = new float[D];
        q[0] = 1f;
        h.attend(q, 0, 1, 3, 1f, new float[D], 0, new float[h.scratchSize(1)]);
        p.enforce(h, 4, 1);
        assertEquals(Set.of(0, 1, 3), positions(h));
    }

    @Test
    void snapkvCompressesOnceAtTheEndOfThePrompt() {
        SplittableRandom r = new SplittableRandom(2);
        int prompt = 200;
        HeadKv h = new HeadKv(D, 16, 0, KvDtype.F32, null);
        EvictionPolicy p = new EvictionPolicy(EvictionPolicy.Spec.of(EvictionPolicy.Kind.SNAPKV, 4.0, 0));
        p.prepare(h, prompt);
        float[] hot = new float[D];
        hot[0] = 4f;
        for (int t = 0; t < prompt; t++) {
            float[] k = new float[D];
            for (int i = 0; i < D; i++) k[i] = (float) r.nextGaussian() * 0.1f;
            if (t == 50) k = hot.clone(); // the token the observation window attends to
            h.append(t, k, 0, new float[D], 0);
        }
        for (int t = 0; t < prompt; t++) {
            float[] q = new float[D];
            q[0] = 1f;
            h.attend(q, 0, 1, t, 1f, new float[D], 0, new float[h.scratchSize(1)]);
            p.enforce(h, t + 1, prompt);
            if (t + 1 < prompt) assertEquals(t >= 0 ? prompt : 0, h.live(), "no eviction inside the prompt");
        }
        assertEquals(50, h.live());
        Set<Integer> kept = positions(h);
        assertTrue(kept.contains(50) && kept.contains(49) && kept.contains(53), "the attended token and its pooled neighbours stay");
        for (int t = prompt - 16; t < prompt; t++) assertTrue(kept.contains(t));
        h.append(prompt, new float[D], 0, new float[D], 0);
        p.enforce(h, prompt + 1, prompt);
        assertEquals(51, h.live(), "decode adds without evicting");
    }

    static double norm(float[] k) {
        double s = 0;
        for (float x : k) s += x * x;
        return Math.sqrt(s);
    }
}
