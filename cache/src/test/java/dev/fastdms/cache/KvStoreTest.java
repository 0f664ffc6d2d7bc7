package dev.fastdms.cache;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

class KvStoreTest {
    /** E4M3 from its definition: sign, 4 exponent bits (bias 7), 3 mantissa bits; exponent 0 is subnormal; 0x7F/0xFF are NaN. */
    static double e4m3(int code) {
        int s = (code >> 7) & 1, e = (code >> 3) & 15, m = code & 7;
        double v = e == 0 ? m / 8.0 * Math.pow(2, -6) : (1 + m / 8.0) * Math.pow(2, e - 7);
        return s == 1 ? -v : v;
    }

    @Test
    void fp8DecodesEveryCodeAndEncodesToTheNearest() {
        for (int c = 0; c < 256; c++) {
            if ((c & 0x7F) == 0x7F) continue; // NaN codes are never produced
            assertEquals(e4m3(c), KvStore.Fp8.decodeScalar((byte) c), 0.0, "code " + c);
            // every representable value encodes to itself (the sign of zero aside)
            if ((c & 0x7F) != 0) assertEquals(c, KvStore.Fp8.encode((float) e4m3(c)) & 0xFF, "round trip of code " + c);
        }
        assertEquals(448.0, KvStore.Fp8.decodeScalar(KvStore.Fp8.encode(1e6f)), 0.0, "saturates");
        SplittableRandom r = new SplittableRandom(5);
        for (int i = 0; i < 20000; i++) {
            float x = (float) (r.nextGaussian() * Math.pow(2, r.nextInt(-10, 9)));
            if (Math.abs(x) > 448) continue;
            double got = KvStore.Fp8.decodeScalar(KvStore.Fp8.encode(x));
            double best = Double.MAX_VALUE;
            for (int c = 0; c < 256; c++) if ((c & 0x7F) != 0x7F) best = Math.min(best, Math.abs(e4m3(c) - x));
            assertEquals(best, Math.abs(got - x), 1e-12, "nearest code for " + x);
        }
    }

    @ParameterizedTest
    @EnumSource(KvDtype.class)
    void roundTripErrorWithinTheTypesBound(KvDtype t) {
        int dim = 64;
        KvStore s = KvStore.of(t, dim, 4);
        s.addPage();
        s.addPage();
        SplittableRandom r = new SplittableRandom(t.ordinal());
        for (int slot = 0; slot < 8; slot++) {
            float[] x = new float[dim];
            float absmax = 0;
            for (int i = 0; i < dim; i++) { x[i] = (float) (r.nextGaussian() * Math.pow(10, slot % 4 - 2)); absmax = Math.max(absmax, Math.abs(x[i])); }
            s.put(slot, x, 0);
            float[] y = new float[dim + 3];
            s.decode(slot, y, 3);
            for (int i = 0; i < dim; i++) {
                double err = Math.abs(y[3 + i] - x[i]);
                double bound = switch (t) {
                    case F32 -> 0;
                    case F16 -> Math.abs(x[i]) * 0x1p-11 + 0x1p-25;
                    case BF16 -> Math.abs(x[i]) * 0x1p-8;
                    case FP8_E4M3 -> Math.max(Math.abs(x[i]) * 0x1p-4, absmax / 448 * 0x1p-10); // half an ulp: 3 mantissa bits; subnormal step 2^-9 scaled
                    case Q8 -> blockMax(x, i) / 127 / 2 * 1.0001;
                };
                assertTrue(err <= bound + 1e-12, t + " slot " + slot + " i " + i + ": " + x[i] + " -> " + y[3 + i]);
            }
        }
        // moving a row moves its scale too
        float[] a = new float[dim], b = new float[dim];
        s.decode(5, a, 0);
        s.move(5, 1);
        s.decode(1, b, 0);
        assertArrayEquals(a, b);
        assertEquals(8L * s.rowBytes(), s.bytes());
    }

    /** The vectorised decoder against the definition, for every one of the 256 codes, with a row scale. */
    @Test
    void fp8VectorDecodeOfAll256Codes() {
        KvStore.Fp8 s = (KvStore.Fp8) KvStore.of(KvDtype.FP8_E4M3, 256, 2);
        s.addPage();
        for (int c = 0; c < 256; c++) s.pages[0][256 + c] = (byte) c;
        float scale = 0.37f;
        s.scales[0][1] = scale;
        float[] y = new float[256];
        s.decode(1, y, 0);
        for (int c = 0; c < 256; c++) {
            if ((c & 0x7F) == 0x7F) continue; // the two NaN codes are never stored (encode saturates at 448)
            assertEquals((float) e4m3(c) * scale, y[c], 0f, "code " + c);
        }
    }

    /** Decoding a run of rows (as attention's tiles do) equals decoding row by row, tails included. */
    @ParameterizedTest
    @CsvSource({"F16,12", "BF16,12", "FP8_E4M3,12", "Q8,40", "Q8,64", "F16,3", "FP8_E4M3,64"})
    void decodeRowsEqualsRowByRow(KvDtype t, int dim) {
        KvStore s = KvStore.of(t, dim, 7);
        s.addPage();
        SplittableRandom r = new SplittableRandom(dim);
        for (int slot = 0; slot < 7; slot++) {
            float[] x = new float[dim];
            for (int i = 0; i < dim; i++) x[i] = (float) r.nextGaussian();
            s.put(slot, x, 0);
        }
        float[] run = new float[2 + 5 * dim], one = new float[dim];
        s.decodeRows(1, 5, run, 2);
        for (int row = 0; row < 5; row++) {
            s.decode(1 + row, one, 0);
            for (int i = 0; i < dim; i++) assertEquals(one[i], run[2 + row * dim + i], 0f, "row " + row + " [" + i + "]");
        }
    }

    @Test
    void q8WithAHeadDimensionBelow32UsesOneBlockPerRow() {
        KvStore s = KvStore.of(KvDtype.Q8, 8, 4);
        s.addPage();
        float[] x = {1f, -2f, 0.5f, 3f, -0.25f, 0f, 2.5f, -3.5f}, y = new float[8];
        s.put(0, x, 0);
        s.decode(0, y, 0);
        for (int i = 0; i < 8; i++) assertEquals(x[i], y[i], 3.5 / 127 / 2 * 1.0001);
        assertEquals(8 + 4, s.rowBytes());
    }

    static float blockMax(float[] x, int i) {
        int b = i / 32 * 32;
        float m = 0;
        for (int j = b; j < b + 32; j++) m = Math.max(m, Math.abs(x[j]));
        return m;
    }
}
