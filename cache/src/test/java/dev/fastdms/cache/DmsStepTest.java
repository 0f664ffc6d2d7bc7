package dev.fastdms.cache;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** The step protocol on one head: the window's edges, both conventions, and the last query's view after a step. */
class DmsStepTest {
    static final float[] ROW = {1f, 2f};

    @Test
    void aFlaggedKeyIsVisibleThroughTheWindowAndGoneAfter() {
        int w = 3, p = 10;
        assertTrue(DmsStep.visible(p, true, p + w, w));
        assertFalse(DmsStep.visible(p, true, p + w + 1, w));
        assertTrue(DmsStep.visible(p, false, p + 1000, w), "never flagged: stays");
        assertFalse(DmsStep.visible(p, false, p - 1, w), "no query sees the future");
        assertFalse(DmsStep.windowClosed(p, p + w, w));
        assertTrue(DmsStep.windowClosed(p, p + w + 1, w));
    }

    @Test
    void nvidiaFlagsThePreviousTokenFastdmsTheTokenItself() {
        for (DmsConfig.Convention conv : DmsConfig.Convention.values()) {
            DmsConfig dms = new DmsConfig(0, 1f, 0f, conv);
            HeadKv h = new HeadKv(2, 4, 0);
            // decode: token 5 decides "evict", the others "keep"
            for (int pos = 0; pos < 8; pos++) {
                DmsStep.append(h, dms, pos == 5, true, pos, ROW, 0, ROW, 0);
                DmsStep.endStep(h, dms, pos);
            }
            int gone = conv == DmsConfig.Convention.NVIDIA ? 4 : 5;
            assertEquals(gone, DmsStep.decidedPosition(dms, 5), conv.name());
            assertEquals(7, h.live(), conv + ": one token evicted");
            for (int s = 0; s < h.live(); s++) assertNotEquals(gone, h.position(s), conv + ": position " + gone + " is the one gone");
        }
    }

    @Test
    void afterAStepTheHeadHoldsExactlyWhatTheLastQuerySees() {
        SplittableRandom r = new SplittableRandom(3);
        for (DmsConfig.Convention conv : DmsConfig.Convention.values()) {
            int w = 5, T = 40;
            DmsConfig dms = new DmsConfig(w, 1f, 0f, conv);
            HeadKv h = new HeadKv(2, 8, w);
            boolean[] flagged = new boolean[T];
            // steps of 1..9 rows, like prefill chunks then decode
            for (int pos = 0; pos < T; ) {
                int rows = Math.min(T - pos, 1 + r.nextInt(9));
                for (int i = 0; i < rows; i++) {
                    boolean evict = r.nextInt(3) > 0;
                    int decided = DmsStep.decidedPosition(dms, pos + i);
                    if (evict && decided >= 0) flagged[decided] = true;
                    DmsStep.append(h, dms, evict, i == 0, pos + i, ROW, 0, ROW, 0);
                }
                int last = pos + rows - 1;
                DmsStep.endStep(h, dms, last);
                int want = 0;
                for (int p = 0; p <= last; p++) if (DmsStep.visible(p, flagged[p], last, w)) want++;
                assertEquals(want, h.live(), conv + " live after the step ending at " + last);
                pos += rows;
            }
        }
    }

    @Test
    void withoutDmsNothingIsEvicted() {
        HeadKv h = new HeadKv(2, 4, 0);
        for (int pos = 0; pos < 10; pos++) {
            DmsStep.append(h, null, true, true, pos, ROW, 0, ROW, 0);
            DmsStep.endStep(h, null, pos);
        }
        assertEquals(10, h.live());
    }

    @Test
    void forcedEvictionFlagsTheAskedFraction() {
        int hits = 0, n = 20000;
        for (int p = 0; p < n; p++) if (DmsStep.forcedEviction(0.3, 2, 1, p)) hits++;
        assertEquals(0.3, hits / (double) n, 0.02);
        for (int p = 0; p < 100; p++) {
            assertFalse(DmsStep.forcedEviction(0, 0, 0, p));
            assertTrue(DmsStep.forcedEviction(1, 0, 0, p));
            assertEquals(DmsStep.forcedEviction(0.5, 1, 2, p), DmsStep.forcedEviction(0.5, 1, 2, p));
        }
    }
}
