package dev.fastdms.model;

import dev.fastdms.cache.DmsStep;

import java.util.SplittableRandom;

/**
 * Benchmarking only: fills a JVM sequence's cache with random keys and values without running the model, to measure
 * decode at a depth the prefill would take too long to reach on a small machine. Each token is one step of the real
 * protocol ({@link DmsStep}); DMS flags follow the sequence's forced fraction (none without one).
 */
public final class RandomFill {
    private RandomFill() {}

    public static void fill(JvmSequence s, int tokens, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        var cache = s.cache;
        int d = cache.headDim();
        float[] k = new float[d], v = new float[d];
        boolean forced = s.dms != null && s.forcedEvictFraction >= 0;
        for (int t = 0; t < tokens; t++) {
            int pos = s.position + t;
            for (int l = 0; l < cache.layers(); l++) {
                for (int g = 0; g < cache.kvHeads(); g++) {
                    for (int i = 0; i < d; i++) { k[i] = (float) r.nextGaussian(); v[i] = (float) r.nextGaussian(); }
                    var head = cache.head(l, g);
                    boolean evict = forced && DmsStep.forcedEviction(s.forcedEvictFraction, l, g, DmsStep.decidedPosition(s.dms, pos));
                    DmsStep.append(head, s.dms, evict, true, pos, k, 0, v, 0);
                    DmsStep.endStep(head, s.dms, pos);
                }
            }
        }
        s.position += tokens;
    }
}
