package dev.fastdms.cache;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** The Q8 rule: d = absmax / 127, codes rounded half away from zero; the KV cache's Q8 rows store exactly that. */
class Q8BlockTest {
    @Test
    void roundsHalfAwayFromZero() {
        assertEquals(1, Q8Block.code(0.5f, 1f));
        assertEquals(-1, Q8Block.code(-0.5f, 1f));
        assertEquals(3, Q8Block.code(2.5f, 1f));
        assertEquals(-3, Q8Block.code(-2.5f, 1f), "Math.round would give -2");
        assertEquals(0, Q8Block.code(0.49999997f, 1f), "x + 0.5f in float would round up to 1");
        assertEquals(-127, Q8Block.code(-127.4f, 1f));
        assertEquals(0, Q8Block.code(5f, Q8Block.inverse(0f)), "an all-zero block codes to 0");
    }

    @Test
    void scaleIsTheBlockAbsmaxOver127() {
        float[] x = {0.25f, -3.5f, 1f, 2f};
        byte[] q = new byte[4];
        float d = Q8Block.quantize(x, 0, 4, q, 0);
        assertEquals(3.5f / 127f, d);
        assertEquals(-127, q[1]);
        assertEquals(Math.round(0.25f * 127 / 3.5f), q[0]);
    }

    @Test
    void kvQ8RowsStoreTheRulesCodesAndScales() {
        SplittableRandom r = new SplittableRandom(5);
        int dim = 64;
        KvStore s = KvStore.of(KvDtype.Q8, dim, 4);
        s.addPage();
        float[] x = new float[dim], got = new float[dim];
        byte[] q = new byte[32];
        for (int i = 0; i < dim; i++) x[i] = (float) r.nextGaussian();
        // exact ties: block 0 with absmax 127 has d = 1, so these codes sit on halves
        x[0] = 127f; x[1] = -2.5f; x[2] = 2.5f; x[3] = -0.5f;
        s.put(1, x, 0);
        s.decodeRows(1, 1, got, 0);
        for (int b = 0; b < 2; b++) {
            float d = Q8Block.quantize(x, 32 * b, 32, q, 0);
            for (int i = 0; i < 32; i++) assertEquals(q[i] * d, got[32 * b + i], "block " + b + " value " + i);
        }
        assertEquals(-3f, got[1]);
    }
}
