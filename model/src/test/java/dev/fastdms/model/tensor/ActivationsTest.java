package dev.fastdms.model.tensor;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

class ActivationsTest {
    @Test
    void expIsAccurateOverTheWholeRange() {
        for (double x = -87; x <= 88; x += 0.01) {
            double want = Math.exp((float) x), got = Activations.exp((float) x);
            assertEquals(want, got, 4e-7 * want, "e^" + (float) x);
        }
        assertEquals(0f, Activations.exp(-200f), 1e-37f, "arguments are clamped to [-88, 88], never NaN");
        assertTrue(Float.isFinite(Activations.exp(1000f)));
    }

    /** Every lane of the vector loop rounds as the scalar tail does (so results do not depend on the vector width). */
    @Test
    void vectorLanesEqualTheScalarFormulaBitForBit() {
        SplittableRandom r = new SplittableRandom(3);
        int n = 8 * Activations.F.length() + 7;
        float[] gate = new float[n], up = new float[n];
        for (int i = 0; i < n; i++) { gate[i] = (float) (r.nextGaussian() * 6); up[i] = (float) r.nextGaussian(); }
        gate[0] = 120f; gate[1] = -120f; gate[2] = 0f; gate[3] = -0f;
        float[] want = new float[n];
        for (int i = 0; i < n; i++) want[i] = gate[i] / (1f + Activations.exp(-gate[i])) * up[i];
        float[] silu = new float[n];
        for (int i = 0; i < n; i++) silu[i] = (float) (gate[i] / (1 + Math.exp(-gate[i])) * up[i]);
        Activations.swiglu(gate, up, n);
        for (int i = 0; i < n; i++) {
            assertEquals(Float.floatToIntBits(want[i]), Float.floatToIntBits(gate[i]), "lane " + i);
            assertEquals(silu[i], gate[i], 1e-6 * Math.abs(silu[i]) + 1e-30, "silu " + i);
        }
    }
}
