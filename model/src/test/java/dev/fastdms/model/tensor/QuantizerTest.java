package dev.fastdms.model.tensor;

import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

class QuantizerTest {
    static float f16(float v) { return Float.float16ToFloat(Float.floatToFloat16(v)); }

    static float[] dequant(GgmlType t, byte[] b, int n) {
        float[] out = new float[n];
        FloatTensor.of(t, MemorySegment.ofArray(b), n).copyTo(0, out, 0, n);
        return out;
    }

    @Test
    void q8_0KnownBlock() {
        float[] x = new float[32];
        for (int j = 0; j < 32; j++) x[j] = (j - 16) * 0.5f; // absmax 8 at j = 0
        byte[] b = Quantizer.toQ8_0(x);
        assertEquals(34, b.length);
        float d = f16(8f / 127f);
        assertEquals(Float.floatToFloat16(8f / 127f), (short) ((b[0] & 0xFF) | (b[1] << 8)));
        assertEquals(-127, b[2]); // x[0] = -8 = -absmax
        assertEquals(0, b[2 + 16]);
        assertEquals(16, b[2 + 18]); // 1.0 * 127 / 8 = 15.875 -> 16
        assertEquals(8, b[2 + 17]); // 0.5 * 127 / 8 = 7.9375 -> 8
        float[] y = dequant(GgmlType.Q8_0, b, 32);
        assertEquals(-127 * d, y[0], 0f);
        assertEquals(16 * d, y[18], 0f);
    }

    @Test
    void q8_0RoundsHalfAwayFromZero() {
        float[] x = new float[32];
        x[0] = 127f; // d = 1 exactly
        x[1] = 2.5f;
        x[2] = -2.5f;
        x[3] = 0.49f;
        byte[] b = Quantizer.toQ8_0(x);
        assertEquals(127, b[2]);
        assertEquals(3, b[3]);
        assertEquals(-3, b[4]);
        assertEquals(0, b[5]);
    }

    @Test
    void q4_0KnownBlock() {
        float[] x = new float[32];
        for (int j = 0; j < 32; j++) x[j] = j - 12f; // largest magnitude: 19 at j = 31 (positive), so d = -19/8
        byte[] b = Quantizer.toQ4_0(x);
        assertEquals(18, b.length);
        float d = f16(-19f / 8f);
        float[] y = dequant(GgmlType.Q4_0, b, 32);
        assertEquals((b[2 + 15] >> 4) & 0xF, 0); // x[31] = max -> q = 0
        assertEquals(-8 * d, y[31], 0f);
        for (int j = 0; j < 32; j++) {
            int q = Math.min(15, (int) (x[j] / (-19f / 8f) + 8.5f));
            assertEquals((q - 8) * d, y[j], 1e-6f, "element " + j);
        }
        // a tie in magnitude: the first one (-19) sets d = 19/8 and the opposite extreme +19 would be q = 16: clamped to 15
        x[0] = -19f;
        byte[] c = Quantizer.toQ4_0(x);
        assertEquals(0, c[2] & 0xF);
        assertEquals(15, (c[2 + 15] >> 4) & 0xF);
    }

    @Test
    void roundTripErrorBounds() {
        SplittableRandom r = new SplittableRandom(5);
        int n = 32 * 40;
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (r.nextGaussian() * (1 + i / 32)); // a different scale per block
        for (int i = 0; i < n; i += 97) x[i] = 0f;
        java.util.Arrays.fill(x, 64, 96, 0f); // an all-zero block
        float[] y8 = dequant(GgmlType.Q8_0, Quantizer.toQ8_0(x), n), y4 = dequant(GgmlType.Q4_0, Quantizer.toQ4_0(x), n);
        for (int b = 0; b < n; b += 32) {
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b + j]));
            for (int j = 0; j < 32; j++) {
                int i = b + j;
                // half a step, plus the f16 rounding of the scale (relative 2^-11) times the largest |q|
                assertEquals(x[i], y8[i], amax / 127f * 0.5f + amax * 0x1p-11f * 1.01f + 1e-30f, "q8_0 " + i);
                // a 4-bit step is amax/8; the opposite extreme can be off by a whole step (clamped at q = 15)
                assertEquals(x[i], y4[i], amax / 8f * 1.0f + amax * 0x1p-11f * 1.01f + 1e-30f, "q4_0 " + i);
            }
            if (amax == 0) for (int j = 0; j < 32; j++) { assertEquals(0f, y8[b + j], 0f); assertEquals(0f, y4[b + j], 0f); }
        }
        // typical error well inside the bound: RMS of q8_0 error about step/sqrt(12)
        double e8 = 0, e4 = 0, s = 0;
        for (int i = 0; i < n; i++) { e8 += (x[i] - y8[i]) * (x[i] - y8[i]); e4 += (x[i] - y4[i]) * (x[i] - y4[i]); s += x[i] * x[i]; }
        assertTrue(Math.sqrt(e8 / s) < 0.01, "q8_0 relative rms " + Math.sqrt(e8 / s));
        assertTrue(Math.sqrt(e4 / s) < 0.12, "q4_0 relative rms " + Math.sqrt(e4 / s));
    }

    @Test
    void bf16RoundsToNearestEven() {
        assertEquals(1f, Quantizer.fromBF16(Quantizer.toBF16(1f + 0x1p-8f))); // tie, 1.0 is even
        assertEquals(1f + 0x1p-6f, Quantizer.fromBF16(Quantizer.toBF16(1f + 3 * 0x1p-8f))); // tie, up to the even one
        assertEquals(1f + 0x1p-7f, Quantizer.fromBF16(Quantizer.toBF16(1f + 0x1p-8f + 0x1p-20f))); // above the tie
        assertEquals(-(1f + 0x1p-7f), Quantizer.fromBF16(Quantizer.toBF16(-(1f + 0x1p-8f + 0x1p-20f))));
        assertEquals(1f, Quantizer.fromBF16(Quantizer.toBF16(1f + 0x1p-8f - 0x1p-20f))); // below the tie
        assertEquals(Float.POSITIVE_INFINITY, Quantizer.fromBF16(Quantizer.toBF16(Float.MAX_VALUE))); // rounds past the largest bf16
        assertEquals(Float.NEGATIVE_INFINITY, Quantizer.fromBF16(Quantizer.toBF16(Float.NEGATIVE_INFINITY)));
        assertTrue(Float.isNaN(Quantizer.fromBF16(Quantizer.toBF16(Float.NaN))));
        assertTrue(Float.isNaN(Quantizer.fromBF16(Quantizer.toBF16(Float.intBitsToFloat(0x7F800001))))); // NaN with only low payload bits
        assertEquals(0x1p-133f, Quantizer.fromBF16(Quantizer.toBF16(0x1p-133f))); // subnormal kept
        SplittableRandom r = new SplittableRandom(9);
        for (int i = 0; i < 10000; i++) {
            float v = (float) (r.nextGaussian() * Math.pow(10, r.nextInt(-20, 20)));
            float y = Quantizer.fromBF16(Quantizer.toBF16(v));
            assertTrue(Math.abs(y - v) <= Math.abs(v) * 0x1p-8f, v + " -> " + y); // half an ulp of 8 significant bits
        }
    }

    @Test
    void halfAndBf16ArraysReadBack() {
        float[] x = {0f, 1f, -2.75f, 65504f, 1e-5f, 3.1415927f, -0.1f, 1000.25f};
        float[] h = dequant(GgmlType.F16, Quantizer.toF16(x), x.length), b = dequant(GgmlType.BF16, Quantizer.toBF16(x), x.length);
        for (int i = 0; i < x.length; i++) {
            assertEquals(Float.float16ToFloat(Float.floatToFloat16(x[i])), h[i], 0f);
            assertEquals(x[i], b[i], Math.abs(x[i]) * 0x1p-8f);
        }
        assertThrows(IllegalArgumentException.class, () -> Quantizer.toQ8_0(new float[33]));
    }
    @Test
    void q8_0IsTheCacheModulesQ8RuleWithAnF16Scale() {
        float[] x = new float[64];
        SplittableRandom r = new SplittableRandom(9);
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
        x[0] = 127f; x[1] = -2.5f; x[2] = 0.49999997f; // d = 1 in block 0: exact ties and a near-half
        byte[] b = Quantizer.toQ8_0(x), q = new byte[32];
        for (int k = 0; k < 2; k++) {
            float d = dev.fastdms.cache.Q8Block.quantize(x, 32 * k, 32, q, 0);
            assertEquals(Quantizer.toF16(d), (short) ((b[34 * k] & 0xFF) | (b[34 * k + 1] << 8)));
            for (int i = 0; i < 32; i++) assertEquals(q[i], b[34 * k + 2 + i], "block " + k + " value " + i);
        }
        assertEquals(-3, b[3], "half away from zero");
        assertEquals(0, b[4]);
    }
}
