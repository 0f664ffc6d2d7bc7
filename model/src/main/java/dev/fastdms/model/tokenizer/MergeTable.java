package dev.fastdms.model.tokenizer;

import java.util.Arrays;

/**
 * BPE merge rules: (left id, right id) to (rank, merged id), in an open-addressing table keyed by the id pair, so a
 * lookup costs no allocation or boxing.
 */
final class MergeTable {
    private static final long EMPTY = -1L;
    private final long[] keys;
    private final int[] ranks, results;
    private final int shift;
    private int size;

    MergeTable(int expected) {
        int cap = Integer.highestOneBit(Math.max(16, expected * 2 - 1)) << 1;
        keys = new long[cap];
        Arrays.fill(keys, EMPTY);
        ranks = new int[cap];
        results = new int[cap];
        shift = 64 - Integer.numberOfTrailingZeros(cap);
    }

    private static long key(int left, int right) { return ((long) left << 32) | (right & 0xFFFFFFFFL); }

    private int slotOf(long k) {
        int i = (int) ((k * 0x9E3779B97F4A7C15L) >>> shift), mask = keys.length - 1;
        while (keys[i] != EMPTY && keys[i] != k) i = (i + 1) & mask;
        return i;
    }

    /** Adds a rule; a pair already present keeps its earlier (better) rank. */
    void add(int left, int right, int rank, int result) {
        long k = key(left, right);
        int s = slotOf(k);
        if (keys[s] != EMPTY) return;
        keys[s] = k;
        ranks[s] = rank;
        results[s] = result;
        size++;
    }

    /** The rank of merging this pair, or -1 when no rule merges it. */
    int rank(int left, int right) {
        int s = slotOf(key(left, right));
        return keys[s] == EMPTY ? -1 : ranks[s];
    }

    /** The merged id of a pair that {@link #rank} found. */
    int result(int left, int right) { return results[slotOf(key(left, right))]; }

    int size() { return size; }
}
