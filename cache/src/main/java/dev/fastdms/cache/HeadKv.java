package dev.fastdms.cache;

import java.util.Arrays;

/**
 * Keys and values of one KV head of one layer of one sequence, compacted: slots [0, live) hold exactly the tokens
 * still stored, in no particular position order, each with its position and eviction flag.
 *
 * <p>Why compaction by moving the last slot into the hole (rather than a free list with holes): attention then scans
 * one dense range [0, live), which is what vectorised CPU loops and GPU kernels want, and reclaiming costs one copy of
 * one key and one value (O(head_dim)) per evicted token.
 *
 * <p>Delayed eviction (DMS): a token flagged evicted stays visible while {@code q - p <= window} and its slot is
 * reclaimed by {@link #reclaim(int)} once no future query can see it. Tokens never flagged stay for ever.
 */
public final class HeadKv {
    private final int headDim;
    private final int blockTokens;
    private int window;              // delayed-eviction window; evicted tokens with q - p > window are invisible
    private float[] keys = new float[0];
    private float[] values = new float[0];
    private int[] positions = new int[0];
    private boolean[] evicted = new boolean[0];
    private int live;
    private long seen;
    // Tokens not yet past the window, oldest first: pendingSlot[(head + i) % cap] is the slot of position pendingStart + i.
    private int[] pendingSlot = new int[16];
    private int pendingHead, pendingCount, pendingStart;

    public HeadKv(int headDim, int blockTokens, int window) {
        this.headDim = headDim;
        this.blockTokens = blockTokens;
        this.window = window;
    }

    public int headDim() { return headDim; }
    public int live() { return live; }
    public long seen() { return seen; }
    public int window() { return window; }
    public int position(int slot) { return positions[slot]; }
    public boolean isEvicted(int slot) { return evicted[slot]; }

    /** Stores the key and value of the token at {@code pos}; positions must be appended in increasing order. */
    public int append(int pos, float[] k, int kOff, float[] v, int vOff) {
        if (pendingCount == 0) pendingStart = pos;
        else if (pos != pendingStart + pendingCount) throw new IllegalStateException("positions must be appended in order: expected " + (pendingStart + pendingCount) + ", got " + pos);
        if (live == positions.length) grow();
        int slot = live++;
        System.arraycopy(k, kOff, keys, slot * headDim, headDim);
        System.arraycopy(v, vOff, values, slot * headDim, headDim);
        positions[slot] = pos;
        evicted[slot] = false;
        if (pendingCount == pendingSlot.length) {
            int[] n = new int[pendingSlot.length * 2];
            for (int i = 0; i < pendingCount; i++) n[i] = pendingSlot[(pendingHead + i) % pendingSlot.length];
            pendingSlot = n;
            pendingHead = 0;
        }
        pendingSlot[(pendingHead + pendingCount++) % pendingSlot.length] = slot;
        seen++;
        return slot;
    }

    /** Flags the token at {@code pos} for delayed eviction. It must not have left the window yet. */
    public void markEvicted(int pos) {
        int i = pos - pendingStart;
        if (pendingCount == 0 || i < 0 || i >= pendingCount) throw new IllegalStateException("position " + pos + " is not pending");
        evicted[pendingSlot[(pendingHead + i) % pendingSlot.length]] = true;
    }

    /** Whether the token in {@code slot} is visible to a query at {@code q}. */
    public boolean visible(int slot, int q) {
        int p = positions[slot];
        return p <= q && (q - p <= window || !evicted[slot]);
    }

    /** Frees the slots of evicted tokens no query at {@code nextQuery} or later can see. */
    public void reclaim(int nextQuery) {
        while (pendingCount > 0 && nextQuery - pendingStart > window) {
            int slot = pendingSlot[pendingHead];
            pendingHead = (pendingHead + 1) % pendingSlot.length;
            pendingCount--;
            pendingStart++;
            if (evicted[slot]) removeSlot(slot);
        }
    }

    private void removeSlot(int slot) {
        int last = --live;
        if (slot != last) {
            System.arraycopy(keys, last * headDim, keys, slot * headDim, headDim);
            System.arraycopy(values, last * headDim, values, slot * headDim, headDim);
            int p = positions[last];
            positions[slot] = p;
            evicted[slot] = evicted[last];
            int i = p - pendingStart;
            if (i >= 0 && i < pendingCount) pendingSlot[(pendingHead + i) % pendingSlot.length] = slot;
        }
    }

    private void grow() {
        int cap = positions.length + blockTokens;
        keys = Arrays.copyOf(keys, cap * headDim);
        values = Arrays.copyOf(values, cap * headDim);
        positions = Arrays.copyOf(positions, cap);
        evicted = Arrays.copyOf(evicted, cap);
    }

    /**
     * Attention of {@code nQ} query heads that share this KV head, for a query at position {@code q}:
     * out[outOff + h*headDim ..] = softmax_s(scale * q_h · k_s) · v over visible slots s.
     * {@code scratch} must hold at least {@link #live()} floats.
     */
    public void attend(float[] query, int qOff, int nQ, int q, float scale, float[] out, int outOff, float[] scratch) {
        for (int h = 0; h < nQ; h++) {
            int qo = qOff + h * headDim, oo = outOff + h * headDim;
            float max = Float.NEGATIVE_INFINITY;
            for (int s = 0; s < live; s++) {
                if (!visible(s, q)) { scratch[s] = Float.NEGATIVE_INFINITY; continue; }
                float dot = 0f;
                int ko = s * headDim;
                for (int i = 0; i < headDim; i++) dot += query[qo + i] * keys[ko + i];
                scratch[s] = dot * scale;
                if (scratch[s] > max) max = scratch[s];
            }
            Arrays.fill(out, oo, oo + headDim, 0f);
            if (max == Float.NEGATIVE_INFINITY) continue;
            float sum = 0f;
            for (int s = 0; s < live; s++) {
                float w = scratch[s] == Float.NEGATIVE_INFINITY ? 0f : (float) Math.exp(scratch[s] - max);
                scratch[s] = w;
                sum += w;
            }
            float inv = 1f / sum;
            for (int s = 0; s < live; s++) {
                float w = scratch[s] * inv;
                if (w == 0f) continue;
                int vo = s * headDim;
                for (int i = 0; i < headDim; i++) out[oo + i] += w * values[vo + i];
            }
        }
    }

    /** Bytes allocated for payload and per-slot metadata. */
    public long bytesAllocated() {
        return (long) keys.length * 4 + (long) values.length * 4 + positions.length * 4L + evicted.length + pendingSlot.length * 4L;
    }
}
