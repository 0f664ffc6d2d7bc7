package dev.fastdms.model;

import org.junit.jupiter.api.Test;

import java.util.HashSet;
import java.util.Set;

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
}
