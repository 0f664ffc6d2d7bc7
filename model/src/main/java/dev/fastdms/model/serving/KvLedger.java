package dev.fastdms.model.serving;

import dev.fastdms.cache.KvBudget;
import dev.fastdms.model.JvmSequence;
import dev.fastdms.model.Sequence;

import java.util.List;

/**
 * What running sequences really hold against the KV limit, and whether a step's growth fits it. On the JVM the
 * limit is the engine's shared {@link KvBudget} (every head charges it as it grows and DMS-evicted slots are reused,
 * so a DMS sequence holds far less than a dense one); a device backend reserves each sequence's cache up front in
 * one of its slots, so there the slot count (the scheduler's sequence limit) is the limit and a step adds nothing.
 */
final class KvLedger {
    private final KvBudget budget; // null: device slots bound the memory

    KvLedger(KvBudget budget) { this.budget = budget; }

    /** Bytes held by every sequence: the budget's count on the JVM, else the sum of the running caches. */
    long held(List<Sequence> running) {
        if (budget != null) return budget.used();
        long b = 0;
        for (Sequence s : running) b += s.kv().bytesAllocated();
        return b;
    }

    /** The byte limit, or 0 when device slots are the limit. */
    long limit() { return budget == null ? 0 : budget.limit(); }

    /** The most bytes feeding {@code tokens} more tokens to {@code s} can add. */
    long growthBound(Sequence s, int tokens) {
        // the budget counts JVM caches; a device backend reserves its slots up front
        return budget != null && s instanceof JvmSequence j ? j.cache().growthBound(tokens) : 0;
    }

    /** Whether {@code more} bytes on top of what is held stay within the limit. */
    boolean fits(long more) { return budget == null || budget.used() + more <= budget.limit(); }
}
