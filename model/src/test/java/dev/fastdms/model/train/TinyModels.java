package dev.fastdms.model.train;

import dev.fastdms.model.ModelConfig;

import java.util.SplittableRandom;

/** Tiny random models for gradient checks: Llama (adjacent-pair RoPE, tied head) and Qwen3 (q/k norm, halves). */
final class TinyModels {
    private TinyModels() {}

    static ModelConfig config(boolean ropeHalf, boolean qkNorm) {
        return new ModelConfig(qkNorm ? "qwen3" : "llama", 8, 2, 4, 2, 4, 12, 11, 64, 1e-5f, 10000f, null,
                ropeHalf, !qkNorm, qkNorm, null);
    }

    static Params random(ModelConfig c, long seed) { return random(c, seed, false); }

    /** With adapter, a random decision adapter too (projection, bias and norm gain). */
    static Params random(ModelConfig c, long seed, boolean adapter) {
        SplittableRandom r = new SplittableRandom(seed);
        Params p = new Params(c, c.tiedEmbeddings(), null, adapter);
        p.forEach((name, a) -> {
            boolean norm = name.endsWith("norm.weight");
            for (int i = 0; i < a.length; i++) a[i] = norm ? 1 + 0.3 * (r.nextDouble() * 2 - 1) : 0.6 * (r.nextDouble() * 2 - 1);
        });
        return p;
    }
}
