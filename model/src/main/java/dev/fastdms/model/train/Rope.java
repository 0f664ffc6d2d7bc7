package dev.fastdms.model.train;

import dev.fastdms.model.ModelConfig;
import dev.fastdms.model.Transformer;

/**
 * Rotary position embedding for positions 0..T-1 with the engine's frequencies (llama3 scaling, rope_freqs), in either
 * layout: halves ({@code ropeHalf}, HF/NeoX) or adjacent pairs (GGUF Llama's permuted rows, llama2.c).
 */
final class Rope {
    final int headDim, half;
    final boolean halves;
    final double[] cos, sin; // [T][half]

    Rope(ModelConfig c, float[] freqFactors, int positions) {
        headDim = c.headDim();
        half = headDim / 2;
        halves = c.ropeHalf();
        float[] inv = Transformer.ropeInverseFrequencies(c, freqFactors);
        cos = new double[positions * half];
        sin = new double[positions * half];
        for (int t = 0; t < positions; t++) {
            for (int j = 0; j < half; j++) {
                double a = t * (double) inv[j];
                cos[t * half + j] = Math.cos(a);
                sin[t * half + j] = Math.sin(a);
            }
        }
    }

    /** Rotates one head vector at off for position t (inverse = false) or applies the transposed rotation (backward). */
    void rotate(double[] v, int off, int t, boolean inverse) {
        int base = t * half;
        for (int j = 0; j < half; j++) {
            double cs = cos[base + j], sn = inverse ? -sin[base + j] : sin[base + j];
            int ia = halves ? off + j : off + 2 * j, ib = halves ? off + j + half : off + 2 * j + 1;
            double a = v[ia], b = v[ib];
            v[ia] = a * cs - b * sn;
            v[ib] = a * sn + b * cs;
        }
    }
}
