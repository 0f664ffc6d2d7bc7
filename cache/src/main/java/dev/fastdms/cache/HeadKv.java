package dev.fastdms.cache;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.util.Arrays;

/**
 * Keys and values of one KV head of one layer of one sequence, compacted: slots [0, live) hold exactly the tokens
 * still stored, in no particular position order, each with its position and eviction flag.
 *
 * <p>Why compaction by moving the last slot into the hole (rather than a free list with holes, as NVIDIA's paged DMS
 * does): attention then scans one dense range [0, live), which is what vectorised CPU loops and GPU kernels want, and
 * reclaiming costs one copy of one key and one value per evicted token. Storage grows in blocks of
 * {@code blockTokens} slots, so the decode path allocates nothing except at a block boundary, and a steady state with
 * eviction reuses the same slots for ever.
 *
 * <p>Delayed eviction (DMS): a token flagged evicted stays visible while {@code q - p <= window} and its slot is
 * reclaimed by {@link #reclaim(int)} once no future query can see it. Tokens never flagged stay for ever.
 */
public final class HeadKv {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;

    private final int headDim;
    private final int blockTokens;
    private final int window;
    private final KvStore keys, values;
    private final KvBudget budget;
    private int[] positions = new int[0];
    private boolean[] evicted = new boolean[0];
    /** Per-slot statistic for training-free policies (attention mass, key norm); null when none is tracked. */
    private float[] score;
    private ScoreMode scoreMode = ScoreMode.NONE;
    private int scoreFrom = Integer.MIN_VALUE;
    private int live;
    private long seen;
    private long reserved; // bytes taken from the budget
    // Tokens not yet past the window, oldest first: pendingSlot[(head + i) % cap] is the slot of position pendingStart + i.
    private int[] pendingSlot = new int[16];
    private int pendingHead, pendingCount, pendingStart;

    public HeadKv(int headDim, int blockTokens, int window) {
        this(headDim, blockTokens, window, KvDtype.F32, null);
    }

    public HeadKv(int headDim, int blockTokens, int window, KvDtype dtype, KvBudget budget) {
        if (blockTokens < 1) throw new IllegalArgumentException("blockTokens must be >= 1");
        this.headDim = headDim;
        this.blockTokens = blockTokens;
        this.window = window;
        this.keys = KvStore.of(dtype, headDim, blockTokens);
        this.values = KvStore.of(dtype, headDim, blockTokens);
        this.budget = budget;
    }

    /** What {@link #attend} and {@link #append} record per slot for a training-free eviction policy. */
    public enum ScoreMode {
        NONE,
        /** Attention weight from the latest query, averaged over the group's query heads (TOVA). */
        LAST_ATTENTION,
        /** Attention weights summed over queries at positions >= scoreFrom, averaged over heads (H2O, SnapKV). */
        ACCUMULATED_ATTENTION,
        /** The L2 norm of the key (KNorm). */
        KEY_NORM
    }

    public void trackScores(ScoreMode mode, int fromQuery) {
        this.scoreMode = mode;
        this.scoreFrom = fromQuery;
        if (mode != ScoreMode.NONE && score == null) score = new float[positions.length];
    }

    public float score(int slot) { return score == null ? 0f : score[slot]; }

    public int headDim() { return headDim; }
    public int live() { return live; }
    public long seen() { return seen; }
    public int window() { return window; }
    public int capacity() { return keys.capacity; }
    public int position(int slot) { return positions[slot]; }
    public boolean isEvicted(int slot) { return evicted[slot]; }

    /** Stores the key and value of the token at {@code pos}; positions must be appended in increasing order. */
    public int append(int pos, float[] k, int kOff, float[] v, int vOff) {
        if (pendingCount == 0) pendingStart = pos;
        else if (pos != pendingStart + pendingCount) throw new IllegalStateException("positions must be appended in order: expected " + (pendingStart + pendingCount) + ", got " + pos);
        if (live == keys.capacity) grow();
        int slot = live++;
        keys.put(slot, k, kOff);
        values.put(slot, v, vOff);
        positions[slot] = pos;
        evicted[slot] = false;
        if (score != null) score[slot] = scoreMode == ScoreMode.KEY_NORM ? (float) Math.sqrt(dot(k, kOff, k, kOff, headDim)) : 0f;
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

    /**
     * Removes the token in {@code slot} now (training-free policies evict this way); the last slot moves into it.
     * Returns the slot the moved token came from (== {@code slot} when it was the last).
     */
    public int removeSlot(int slot) {
        int last = --live;
        if (slot != last) {
            keys.move(last, slot);
            values.move(last, slot);
            int p = positions[last];
            positions[slot] = p;
            evicted[slot] = evicted[last];
            if (score != null) score[slot] = score[last];
            int i = p - pendingStart;
            if (i >= 0 && i < pendingCount) pendingSlot[(pendingHead + i) % pendingSlot.length] = slot;
        }
        return last;
    }

    /** One more page of slots; the small per-slot arrays grow geometrically (amortised O(1) per token). */
    private void grow() {
        long add = (long) blockTokens * (keys.rowBytes() + values.rowBytes() + 5 + (score == null ? 0 : 4));
        if (budget != null) budget.reserve(add);
        reserved += add;
        keys.addPage();
        values.addPage();
        int cap = keys.capacity;
        if (positions.length < cap) {
            int n = Math.max(cap, positions.length + positions.length / 2);
            positions = Arrays.copyOf(positions, n);
            evicted = Arrays.copyOf(evicted, n);
            if (score != null) score = Arrays.copyOf(score, n);
        }
    }

    /** Gives this head's blocks back to the budget (the sequence is finished). */
    public void release() {
        if (budget != null) budget.release(reserved);
        reserved = 0;
    }

    /** Floats of scratch {@link #attend} needs: scores for every query head plus one decoded row. */
    public int scratchSize(int nQ) { return nQ * live + headDim; }

    /**
     * Attention of {@code nQ} query heads that share this KV head, for a query at position {@code q}:
     * out[outOff + h*headDim ..] = softmax_s(scale * q_h · k_s) · v over visible slots s. Each key and value is read
     * (and decoded) once for all nQ heads. {@code scratch} must hold {@link #scratchSize(int)} floats.
     */
    public void attend(float[] query, int qOff, int nQ, int q, float scale, float[] out, int outOff, float[] scratch) {
        int n = live, row = nQ * n;
        boolean kInPlace = keys instanceof KvStore.F32, vInPlace = values instanceof KvStore.F32;
        // pass 1: scores
        for (int s = 0; s < n; s++) {
            if (!visible(s, q)) {
                for (int h = 0; h < nQ; h++) scratch[h * n + s] = Float.NEGATIVE_INFINITY;
                continue;
            }
            float[] kb;
            int ko;
            if (kInPlace) { kb = keys.floatPage(s); ko = s % blockTokens * headDim; } else { keys.decode(s, scratch, row); kb = scratch; ko = row; }
            for (int h = 0; h < nQ; h++) scratch[h * n + s] = dot(query, qOff + h * headDim, kb, ko, headDim) * scale;
        }
        // softmax per head
        for (int h = 0; h < nQ; h++) {
            int base = h * n;
            float m = Float.NEGATIVE_INFINITY;
            for (int s = 0; s < n; s++) m = Math.max(m, scratch[base + s]);
            Arrays.fill(out, outOff + h * headDim, outOff + (h + 1) * headDim, 0f);
            if (m == Float.NEGATIVE_INFINITY) { Arrays.fill(scratch, base, base + n, 0f); continue; }
            float sum = 0f;
            for (int s = 0; s < n; s++) {
                float w = scratch[base + s] == Float.NEGATIVE_INFINITY ? 0f : (float) Math.exp(scratch[base + s] - m);
                scratch[base + s] = w;
                sum += w;
            }
            float inv = 1f / sum;
            for (int s = 0; s < n; s++) scratch[base + s] *= inv;
        }
        if (score != null && (scoreMode == ScoreMode.LAST_ATTENTION || scoreMode == ScoreMode.ACCUMULATED_ATTENTION) && q >= scoreFrom) {
            boolean last = scoreMode == ScoreMode.LAST_ATTENTION;
            for (int s = 0; s < n; s++) {
                float m = 0f;
                for (int h = 0; h < nQ; h++) m += scratch[h * n + s];
                score[s] = (last ? 0f : score[s]) + m / nQ;
            }
        }
        // pass 2: weighted values
        for (int s = 0; s < n; s++) {
            boolean any = false;
            for (int h = 0; h < nQ && !any; h++) any = scratch[h * n + s] != 0f;
            if (!any) continue;
            float[] vb;
            int vo;
            if (vInPlace) { vb = values.floatPage(s); vo = s % blockTokens * headDim; } else { values.decode(s, scratch, row); vb = scratch; vo = row; }
            for (int h = 0; h < nQ; h++) {
                float w = scratch[h * n + s];
                if (w != 0f) axpy(w, vb, vo, out, outOff + h * headDim, headDim);
            }
        }
    }

    static float dot(float[] a, int ao, float[] b, int bo, int n) {
        int i = 0;
        float s = 0f;
        if (n >= 8) {
            FloatVector acc = FloatVector.zero(F);
            for (; i + 8 <= n; i += 8) acc = FloatVector.fromArray(F, a, ao + i).fma(FloatVector.fromArray(F, b, bo + i), acc);
            s = acc.reduceLanes(VectorOperators.ADD);
        }
        for (; i < n; i++) s += a[ao + i] * b[bo + i];
        return s;
    }

    static void axpy(float w, float[] x, int xo, float[] y, int yo, int n) {
        int i = 0;
        if (n >= 8) {
            FloatVector wv = FloatVector.broadcast(F, w);
            for (; i + 8 <= n; i += 8) FloatVector.fromArray(F, x, xo + i).fma(wv, FloatVector.fromArray(F, y, yo + i)).intoArray(y, yo + i);
        }
        for (; i < n; i++) y[yo + i] += w * x[xo + i];
    }

    /** Bytes allocated: payload (keys, values, their scales) and per-slot metadata (position, flag), plus the window ring. */
    public long bytesAllocated() {
        return keys.bytes() + values.bytes() + positions.length * 4L + evicted.length + pendingSlot.length * 4L
                + (score == null ? 0 : score.length * 4L);
    }
}
