package dev.fastdms.model.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * SwiGLU's gate, vectorised. The exponential is computed here from IEEE operations only (a power of two times a
 * polynomial), so the vector lanes and the scalar tail round identically, before and after the JIT: the Vector
 * API's own EXP may use a different library once compiled, which would make results depend on warm-up.
 */
public final class Activations {
    private Activations() {}

    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final float LOG2E = 1.44269504f, LN2_HI = 0.693145752f, LN2_LO = 1.42860677e-6f, ROUND = 12582912f; // 1.5 * 2^23
    private static final float LIMIT = 88f; // e^88 is still finite in float

    /** gate[i] = silu(gate[i]) * up[i] = gate[i] / (1 + e^-gate[i]) * up[i] for i in [0, n). */
    public static void swiglu(float[] gate, float[] up, int n) {
        int i = 0;
        for (int bound = F.loopBound(n); i < bound; i += F.length()) {
            FloatVector g = FloatVector.fromArray(F, gate, i);
            FloatVector x = g.neg().max(-LIMIT).min(LIMIT);
            FloatVector t = x.fma(FloatVector.broadcast(F, LOG2E), FloatVector.broadcast(F, ROUND)); // round(x·log2 e) in the low mantissa bits
            FloatVector k = t.sub(ROUND);
            FloatVector r = k.fma(FloatVector.broadcast(F, -LN2_HI), x);
            r = k.fma(FloatVector.broadcast(F, -LN2_LO), r);
            FloatVector p = r.fma(FloatVector.broadcast(F, 1f / 720), FloatVector.broadcast(F, 1f / 120));
            p = p.fma(r, FloatVector.broadcast(F, 1f / 24));
            p = p.fma(r, FloatVector.broadcast(F, 1f / 6));
            p = p.fma(r, FloatVector.broadcast(F, 0.5f));
            p = p.fma(r, FloatVector.broadcast(F, 1f));
            p = p.fma(r, FloatVector.broadcast(F, 1f));
            IntVector bits = t.reinterpretAsInts().sub(Float.floatToRawIntBits(ROUND)).add(127).lanewise(VectorOperators.LSHL, 23);
            FloatVector e = p.mul(bits.reinterpretAsFloats());
            g.div(e.add(1f)).mul(FloatVector.fromArray(F, up, i)).intoArray(gate, i);
        }
        for (; i < n; i++) gate[i] = gate[i] / (1f + exp(-gate[i])) * up[i];
    }

    /** e^x with the vector path's exact operations. */
    static float exp(float x) {
        x = Math.min(Math.max(x, -LIMIT), LIMIT);
        float t = Math.fma(x, LOG2E, ROUND), k = t - ROUND;
        float r = Math.fma(k, -LN2_LO, Math.fma(k, -LN2_HI, x));
        float p = Math.fma(r, 1f / 720, 1f / 120);
        p = Math.fma(p, r, 1f / 24);
        p = Math.fma(p, r, 1f / 6);
        p = Math.fma(p, r, 0.5f);
        p = Math.fma(p, r, 1f);
        p = Math.fma(p, r, 1f);
        return p * Float.intBitsToFloat((Float.floatToRawIntBits(t) - Float.floatToRawIntBits(ROUND) + 127) << 23);
    }
}
