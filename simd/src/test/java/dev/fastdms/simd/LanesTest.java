package dev.fastdms.simd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

class LanesTest {
    /** The documented trees, written out in scalar float arithmetic. */
    private static float tree8(float[] l) {
        return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
    }

    private static float tree16(float[] l) {
        float[] h = new float[8];
        for (int i = 0; i < 8; i++) h[i] = l[i] + l[i + 8];
        float[] q = new float[4];
        for (int i = 0; i < 4; i++) q[i] = h[i] + h[i + 4];
        return (q[0] + q[2]) + (q[1] + q[3]);
    }

    @Test
    void sumsFollowTheFixedTreeBitForBit() {
        SplittableRandom random = new SplittableRandom(7);
        boolean orderMattered = false;
        for (int trial = 0; trial < 10_000; trial++) {
            float[] l = new float[16];
            for (int i = 0; i < 16; i++) l[i] = (float) ((random.nextDouble() - 0.5) * Math.pow(10, random.nextInt(-3, 4)));
            float s8 = Lanes.sum(FloatVector.fromArray(FloatVector.SPECIES_256, l, 0));
            float s16 = Lanes.sum512(FloatVector.fromArray(FloatVector.SPECIES_512, l, 0));
            assertEquals(Float.floatToIntBits(tree8(l)), Float.floatToIntBits(s8), "256-bit sum, trial " + trial);
            assertEquals(Float.floatToIntBits(tree16(l)), Float.floatToIntBits(s16), "512-bit sum, trial " + trial);
            float leftToRight = 0;
            for (int i = 0; i < 16; i++) leftToRight += l[i];
            orderMattered |= leftToRight != s16;
        }
        // The inputs are varied enough that a left-to-right sum rounds differently, so the check above has teeth.
        assertTrue(orderMattered);
    }

    @Test
    void wideIsTheWidestSupportedUpTo512Bits() {
        int preferred = FloatVector.SPECIES_PREFERRED.vectorBitSize();
        assertEquals(preferred >= 512 ? 512 : 256, Lanes.WIDE.vectorBitSize());
    }
}
