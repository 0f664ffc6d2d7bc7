package dev.fastdms.cache;

import java.util.Arrays;

/**
 * Keys and values of one KV head of one layer of one sequence, compacted: slots [0, live) hold exactly the tokens
 * still stored, in no particular position order, each with its position and eviction flag.
 *
 * <h2>The DMS rule</h2>
 * The rule itself ({@link DmsStep#visible}, {@link DmsStep#windowClosed}) and the order of a step's flag, reclaim
 * and append calls ({@link DmsStep#append}) are {@link DmsStep}'s; this class applies them to its slots. The flag for
 * p arrives late ({@link #markEvicted}), so a flagged token stays visible for {@code window} more queries; once no
 * future query can see it, {@link #reclaim} frees its slot. During a prefill many tokens are appended first and
 * queries at earlier positions then attend, each seeing exactly what the rule allows at its own position.
 *
 * <h2>Compaction</h2>
 * A freed slot is filled by moving the last slot into it ("move-last-into-hole"), so the stored tokens always occupy
 * the dense range [0, live). Why this rather than a free list with holes (as NVIDIA's paged DMS kernels use): the
 * attention scan is then one dense run with no hole tests, which is what vectorised CPU loops (and GPU kernels) want,
 * and freeing costs one copy of one key row and one value row per evicted token. Attention does not care about slot
 * order (softmax is a sum), so the shuffle is free for correctness.
 *
 * <h2>Storage and the decode path</h2>
 * Rows live in pages of {@code blockTokens} slots ({@link KvStore}); positions and flags in pages of the same size.
 * Growing adds one page (and is when a {@link KvBudget} is charged); nothing is allocated per token, and a steady
 * state with eviction reuses the same slots for ever. {@link #attend} allocates nothing.
 *
 * <p>Pending tokens (appended, not yet out of the window of the next query to come) are tracked in a ring indexed by
 * position, so {@link #markEvicted} finds a token's slot although compaction moves it around, and {@link #reclaim}
 * visits only tokens that are leaving the window.
 *
 * <p>Not thread-safe: one thread appends, attends and reclaims a head at a time.
 */
public final class HeadKv {
    /** Rows decoded together into the L1 scratch tile by {@link #attend} for non-F32 storage. */
    static final int TILE = 32;

    private final int headDim;
    private final int blockTokens;
    private final int window;
    private final KvDtype dtype;
    private final KvStore keys, values;
    private final KvBudget budget;
    // per-slot metadata, paged like the rows: slot s is at [s / blockTokens][s % blockTokens]
    private int[][] positions = new int[0][];
    private boolean[][] evicted = new boolean[0][];
    /** Per-slot statistic for training-free policies (attention mass, key norm); null when none is tracked. */
    private float[][] score;
    private ScoreMode scoreMode = ScoreMode.NONE;
    private int scoreFrom = Integer.MIN_VALUE;
    private int live;
    private long seen;
    private int flagged;               // live slots flagged evicted (all of them are pending)
    private int lastPos = Integer.MIN_VALUE;
    private long reserved;             // bytes taken from the budget == bytesAllocated()
    // Pending tokens, oldest first: pendingSlot[(pendingHead + i) % length] is the slot of position pendingStart + i,
    // or -1 when that token was removed by removeSlot.
    private int[] pendingSlot = new int[0];
    private int pendingHead, pendingCount, pendingStart;

    public HeadKv(int headDim, int blockTokens, int window) {
        this(headDim, blockTokens, window, KvDtype.F32, null);
    }

    /**
     * @param blockTokens slots added each time the head grows
     * @param window      DMS delayed-eviction window (tokens a flagged token stays visible for)
     * @param budget      shared byte limit charged per block, or null for none
     */
    public HeadKv(int headDim, int blockTokens, int window, KvDtype dtype, KvBudget budget) {
        if (headDim < 1) throw new IllegalArgumentException("headDim must be >= 1");
        if (blockTokens < 1) throw new IllegalArgumentException("blockTokens must be >= 1");
        if (window < 0) throw new IllegalArgumentException("DMS window must be >= 0");
        this.headDim = headDim;
        this.blockTokens = blockTokens;
        this.window = window;
        this.dtype = dtype;
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

    /** Starts (or stops, with {@link ScoreMode#NONE}) recording a per-slot statistic; queries before fromQuery do not count. */
    public void trackScores(ScoreMode mode, int fromQuery) {
        this.scoreMode = mode;
        this.scoreFrom = fromQuery;
        if (mode != ScoreMode.NONE && score == null) {
            charge((long) positions.length * blockTokens * 4);
            score = new float[positions.length][];
            for (int i = 0; i < score.length; i++) score[i] = new float[blockTokens];
        }
    }

    public float score(int slot) { return score == null ? 0f : score[slot / blockTokens][slot % blockTokens]; }

    public int headDim() { return headDim; }
    public KvDtype dtype() { return dtype; }
    public int live() { return live; }
    public long seen() { return seen; }
    public int window() { return window; }
    public int blockTokens() { return blockTokens; }
    public int capacity() { return keys.capacity; }
    public int position(int slot) { checkSlot(slot); return positions[slot / blockTokens][slot % blockTokens]; }
    public boolean isEvicted(int slot) { checkSlot(slot); return evicted[slot / blockTokens][slot % blockTokens]; }

    /** The stored (decoded) key of {@code slot} into dst[off ..]. */
    public void readKey(int slot, float[] dst, int off) { checkSlot(slot); keys.decode(slot, dst, off); }
    /** The stored (decoded) value of {@code slot} into dst[off ..]. */
    public void readValue(int slot, float[] dst, int off) { checkSlot(slot); values.decode(slot, dst, off); }

    private void checkSlot(int slot) {
        if (slot < 0 || slot >= live) throw new IndexOutOfBoundsException("slot " + slot + " of " + live + " live");
    }

    /**
     * Stores the key k[kOff ..] and value v[vOff ..] of the token at {@code pos}; positions must increase by one
     * while earlier tokens are pending. Returns the slot. Allocates only when a block boundary is crossed.
     */
    public int append(int pos, float[] k, int kOff, float[] v, int vOff) {
        if (pendingCount == 0) {
            if (pos <= lastPos) throw new IllegalStateException("positions must increase: " + pos + " after " + lastPos);
            pendingStart = pos;
        } else if (pos != pendingStart + pendingCount) {
            throw new IllegalStateException("positions must be appended in order: expected " + (pendingStart + pendingCount) + ", got " + pos);
        }
        if (live == keys.capacity) grow();
        int slot = live++;
        keys.put(slot, k, kOff);
        values.put(slot, v, vOff);
        int pg = slot / blockTokens, r = slot % blockTokens;
        positions[pg][r] = pos;
        evicted[pg][r] = false;
        if (score != null) score[pg][r] = scoreMode == ScoreMode.KEY_NORM ? (float) Math.sqrt(dot(k, kOff, k, kOff, headDim)) : 0f;
        if (pendingCount == pendingSlot.length) growRing(pendingSlot.length * 2);
        pendingSlot[(pendingHead + pendingCount++) % pendingSlot.length] = slot;
        lastPos = pos;
        seen++;
        return slot;
    }

    /**
     * Flags the token at {@code pos} for delayed eviction: it stays visible to queries within the window and is
     * freed by a later {@link #reclaim}. It must still be pending (not yet passed by a reclaim). Flagging a token a
     * policy has already removed does nothing.
     */
    public void markEvicted(int pos) {
        int i = pos - pendingStart;
        if (pendingCount == 0 || i < 0 || i >= pendingCount) throw new IllegalStateException("position " + pos + " is not pending (its window has passed or it was never appended)");
        int slot = pendingSlot[(pendingHead + i) % pendingSlot.length];
        if (slot < 0) return;
        boolean[] ev = evicted[slot / blockTokens];
        if (!ev[slot % blockTokens]) { ev[slot % blockTokens] = true; flagged++; }
    }

    /** Whether the token in {@code slot} is visible to a query at {@code q} (the DMS rule). */
    public boolean visible(int slot, int q) {
        checkSlot(slot);
        return DmsStep.visible(positions[slot / blockTokens][slot % blockTokens], evicted[slot / blockTokens][slot % blockTokens], q, window);
    }

    /** True when every stored token is visible to a query at q, so attention can skip the per-slot test. */
    private boolean allVisible(int q) {
        // flagged tokens are all pending, i.e. at positions >= pendingStart
        return q >= lastPos && (flagged == 0 || !DmsStep.windowClosed(pendingStart, q, window));
    }

    /**
     * Frees the slots of flagged tokens that no query at {@code nextQuery} or later can see
     * ({@link DmsStep#windowClosed}); those tokens, flagged or not, stop being pending.
     */
    public void reclaim(int nextQuery) {
        while (pendingCount > 0 && DmsStep.windowClosed(pendingStart, nextQuery, window)) {
            int slot = pendingSlot[pendingHead];
            pendingHead = pendingHead + 1 == pendingSlot.length ? 0 : pendingHead + 1;
            pendingCount--;
            pendingStart++;
            if (slot >= 0 && evicted[slot / blockTokens][slot % blockTokens]) removeSlot(slot);
        }
    }

    /**
     * Removes the token in {@code slot} now, whatever its flag (training-free policies evict this way); the last
     * slot moves into it. Returns the slot the moved token came from (== {@code slot} when it was the last), so a
     * caller iterating over slots knows which index changed.
     */
    public int removeSlot(int slot) {
        checkSlot(slot);
        int pg = slot / blockTokens, r = slot % blockTokens;
        int p = positions[pg][r];
        if (evicted[pg][r]) flagged--;
        int i = p - pendingStart;
        if (pendingCount > 0 && i >= 0 && i < pendingCount) pendingSlot[(pendingHead + i) % pendingSlot.length] = -1;
        int last = --live;
        if (slot != last) {
            int lpg = last / blockTokens, lr = last % blockTokens;
            keys.move(last, slot);
            values.move(last, slot);
            int lp = positions[lpg][lr];
            positions[pg][r] = lp;
            evicted[pg][r] = evicted[lpg][lr];
            if (score != null) score[pg][r] = score[lpg][lr];
            int j = lp - pendingStart;
            if (pendingCount > 0 && j >= 0 && j < pendingCount) pendingSlot[(pendingHead + j) % pendingSlot.length] = slot;
        }
        return last;
    }

    /** Bytes one block of slots takes: key and value rows (scales included) and the per-slot metadata. */
    private long blockBytes() {
        return (long) blockTokens * (keys.rowBytes() + values.rowBytes() + 4 + 1 + (score == null ? 0 : 4));
    }

    /** One more block of slots (charged to the budget first), and the pending ring grown to cover it. */
    private void grow() {
        charge(blockBytes());
        keys.addPage();
        values.addPage();
        positions = KvStore.append(positions, new int[blockTokens]);
        evicted = KvStore.append(evicted, new boolean[blockTokens]);
        if (score != null) score = KvStore.append(score, new float[blockTokens]);
        if (pendingSlot.length < keys.capacity) growRing(keys.capacity);
    }

    /**
     * The ring holds at most one entry per live slot unless a policy removed pending tokens, so it grows with the
     * blocks; past that it doubles (amortised O(1)).
     */
    private void growRing(int size) {
        charge(4L * (size - pendingSlot.length));
        int[] n = new int[size];
        for (int i = 0; i < pendingCount; i++) n[i] = pendingSlot[(pendingHead + i) % pendingSlot.length];
        pendingSlot = n;
        pendingHead = 0;
    }

    private void charge(long bytes) {
        if (budget != null) budget.reserve(bytes);
        reserved += bytes;
    }

    /**
     * The most bytes that appending {@code tokens} more tokens can charge, ignoring reclaim (which only frees): whole
     * blocks past the capacity and the pending ring grown with them or doubled. A scheduler checks it against the
     * budget before a step, so the step never fails half-way.
     */
    public long growthBound(int tokens) {
        int over = live + tokens - keys.capacity;
        int blocks = over <= 0 ? 0 : (over + blockTokens - 1) / blockTokens;
        long bytes = blocks * blockBytes();
        int capacity = keys.capacity + blocks * blockTokens;
        int ring = Math.max(pendingSlot.length, capacity);
        while (ring < pendingCount + tokens) ring *= 2;
        return bytes + 4L * (ring - pendingSlot.length);
    }

    /** Gives this head's bytes back to the budget (the sequence is finished; the head must not be used again). */
    public void release() {
        if (budget != null) budget.release(reserved);
        reserved = 0;
    }

    /** Floats of scratch {@link #attend} needs with {@code nQ} query heads: their scores plus one decoded tile. */
    public int scratchSize(int nQ) { return nQ * live + TILE * headDim; }

    /**
     * Grouped-query attention of {@code nQ} query heads sharing this KV head, for a query at position {@code q}:
     * out[outOff + h*headDim ..] = Σ_s softmax_s(scale · q_h · k_s) v_s over the slots visible to q, for query head h
     * at query[qOff + h*headDim ..]. Each key and value row is read from memory once for all nQ heads, in its stored
     * type (non-F32 rows are decoded a tile at a time into the scratch). No allocation. When nothing is visible the
     * output is zero. {@code scratch} must hold {@link #scratchSize(int)} floats.
     */
    public void attend(float[] query, int qOff, int nQ, int q, float scale, float[] out, int outOff, float[] scratch) {
        int n = live, dim = headDim, tileOff = nQ * n;
        Arrays.fill(out, outOff, outOff + nQ * dim, 0f);
        if (n == 0) return;
        if (scratch.length < scratchSize(nQ)) throw new IllegalArgumentException("scratch holds " + scratch.length + " floats, attend needs " + scratchSize(nQ));
        boolean all = allVisible(q);
        // pass 1: raw scores q_h · k_s into scratch[h*n + s]
        for (int s0 = 0; s0 < n; ) {
            int rows = Math.min(Math.min(TILE, n - s0), blockTokens - s0 % blockTokens);
            float[] page = keys.f32Page(s0);
            if (page != null) {
                AttentionKernels.scores(query, qOff, nQ, dim, page, s0 % blockTokens * dim, rows, scratch, n, s0);
            } else {
                keys.decodeRows(s0, rows, scratch, tileOff);
                AttentionKernels.scores(query, qOff, nQ, dim, scratch, tileOff, rows, scratch, n, s0);
            }
            s0 += rows;
        }
        if (!all) maskInvisible(q, nQ, n, scratch);
        // softmax per query head: scratch[h*n + s] becomes the attention weight
        for (int h = 0; h < nQ; h++) {
            float sum = AttentionKernels.softmaxNumerators(scratch, h * n, n, scale);
            if (sum > 0f) scaleRow(scratch, h * n, n, 1f / sum);
        }
        if (score != null && (scoreMode == ScoreMode.LAST_ATTENTION || scoreMode == ScoreMode.ACCUMULATED_ATTENTION) && q >= scoreFrom) {
            recordAttention(nQ, n, scratch);
        }
        // pass 2: weighted sum of values
        for (int s0 = 0; s0 < n; ) {
            int rows = Math.min(Math.min(TILE, n - s0), blockTokens - s0 % blockTokens);
            if (all || anyWeight(scratch, nQ, n, s0, rows)) {
                float[] page = values.f32Page(s0);
                if (page != null) {
                    AttentionKernels.accumulate(scratch, n, s0, nQ, dim, page, s0 % blockTokens * dim, rows, out, outOff);
                } else {
                    values.decodeRows(s0, rows, scratch, tileOff);
                    AttentionKernels.accumulate(scratch, n, s0, nQ, dim, scratch, tileOff, rows, out, outOff);
                }
            }
            s0 += rows;
        }
    }

    /** Sets the scores of slots the query at q may not see to -infinity. */
    private void maskInvisible(int q, int nQ, int n, float[] sc) {
        for (int pg = 0, s0 = 0; s0 < n; pg++, s0 += blockTokens) {
            int[] pos = positions[pg];
            boolean[] ev = evicted[pg];
            int rows = Math.min(blockTokens, n - s0);
            for (int r = 0; r < rows; r++) {
                if (!DmsStep.visible(pos[r], ev[r], q, window)) for (int h = 0; h < nQ; h++) sc[h * n + s0 + r] = Float.NEGATIVE_INFINITY;
            }
        }
    }

    private static boolean anyWeight(float[] w, int nQ, int n, int s0, int rows) {
        for (int h = 0; h < nQ; h++) for (int r = 0; r < rows; r++) if (w[h * n + s0 + r] != 0f) return true;
        return false;
    }

    private static void scaleRow(float[] x, int off, int n, float f) {
        int i = 0;
        for (; i + AttentionKernels.L <= n; i += AttentionKernels.L) {
            jdk.incubator.vector.FloatVector.fromArray(AttentionKernels.F, x, off + i).mul(f).intoArray(x, off + i);
        }
        for (; i < n; i++) x[off + i] *= f;
    }

    private void recordAttention(int nQ, int n, float[] w) {
        boolean last = scoreMode == ScoreMode.LAST_ATTENTION;
        float inv = 1f / nQ;
        for (int s = 0; s < n; s++) {
            float m = 0f;
            for (int h = 0; h < nQ; h++) m += w[h * n + s];
            float[] page = score[s / blockTokens];
            int r = s % blockTokens;
            page[r] = (last ? 0f : page[r]) + m * inv;
        }
    }

    static float dot(float[] a, int ao, float[] b, int bo, int n) {
        float s = 0f;
        for (int i = 0; i < n; i++) s += a[ao + i] * b[bo + i];
        return s;
    }

    /**
     * Bytes allocated for this head: key and value pages (scales included), per-slot metadata pages (position,
     * flag, policy score when tracked) and the pending ring. Equal to what was charged to the budget.
     */
    public long bytesAllocated() {
        return keys.bytes() + values.bytes() + (long) positions.length * blockTokens * (4 + 1 + (score == null ? 0 : 4))
                + pendingSlot.length * 4L;
    }
}
