package dev.fastdms.tornado;

import dev.fastdms.cache.KvDtype;
import dev.fastdms.model.Engine;
import dev.fastdms.model.ProgressListener;
import dev.fastdms.model.Sequence;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** --kv-budget on a device backend sizes the device cache: as many slots per head as the budget holds, up to the context. */
class KvBudgetOnDeviceTest {
    static Engine open(long budget, int sequences, int kvSlots) {
        Engine.Options o = new Engine.Options(Assets.asset("models/stories260K/stories260K-f32.gguf"), null, 0, 0, "opencl", KvDtype.FP8_E4M3,
                null, null, 0, 0, budget).onDevice("opencl", 0, kvSlots, sequences, 0);
        return Engine.open(o, ProgressListener.NONE);
    }

    @Test
    void theBudgetSizesTheSlotsAndEveryCacheFitsInIt() {
        long full;
        int ctx;
        try (Engine e = open(1L << 40, 2, 0)) { // a budget far above the need: the whole context
            ctx = e.config().contextLength();
            assertEquals(ctx, ((TornadoForward) e.forward()).kvSlots());
            Sequence s = e.newSequence();
            full = s.kv().bytesAllocated(); // what the device reports one full-context cache takes
            s.kv().release();
        }
        long budget = 3 * full / 2; // three sequences, half a context each
        try (Engine e = open(budget, 3, 0)) {
            int slots = ((TornadoForward) e.forward()).kvSlots();
            assertTrue(slots > ctx / 2 - ctx / 16 && slots <= ctx / 2, "about half the context per sequence: " + slots + " of " + ctx);
            Sequence[] seqs = {e.newSequence(), e.newSequence(), e.newSequence()};
            long used = 0;
            for (Sequence s : seqs) used += s.kv().bytesAllocated();
            assertTrue(used <= budget, used + " bytes for 3 caches within " + budget);
            for (Sequence s : seqs) s.kv().release();
        }
    }

    @Test
    void aBudgetTooSmallOrGivenWithSlotsIsOneClearError() {
        IllegalArgumentException tiny = assertThrows(IllegalArgumentException.class, () -> open(1000, 2, 0).close());
        assertTrue(tiny.getMessage().contains("--kv-budget"), tiny.getMessage());
        IllegalArgumentException both = assertThrows(IllegalArgumentException.class, () -> open(3_000_000, 2, 64).close());
        assertTrue(both.getMessage().contains("not both"), both.getMessage());
    }
}
