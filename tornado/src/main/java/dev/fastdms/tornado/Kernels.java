package dev.fastdms.tornado;

import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.math.TornadoMath;
import uk.ac.manchester.tornado.api.types.arrays.ByteArray;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;

import static dev.fastdms.tornado.Layout.*;

/**
 * The device kernels of one forward step, written against TornadoVM's kernel API (JIT-compiled to OpenCL C, PTX or
 * SPIR-V). Each kernel is the device twin of a piece of the JVM {@code Transformer}; row counts, the current layer
 * and the rows' sequences and positions are read from device arrays ({@code step}, {@code ctrl}), so one compiled
 * graph serves every layer and every step.
 *
 * <p>Conventions: activations are row-major [row][features]; a "layered" weight is all layers' copies of one matrix
 * back to back, indexed with {@code ctrl[LAYER]}; reductions are tree reductions in local memory within one
 * work-group (no atomics, no cross-group reductions: PoCL crashed on fancier ones). Floats in f16/bf16/fp8 are
 * decoded through a look-up table ({@code lut}) so no kernel needs half-precision hardware (PoCL has none).
 *
 * <p>Code shape, on purpose: TornadoVM 5.2.1 mis-compiles a value that three or more control-flow paths merge (seen
 * here: an if / else-if / else that each computed a float kept the wrong branch's value), so no local variable gets
 * its value from more than two paths. Multi-way choices store to memory inside each branch, and compound conditions
 * that produce values are written with non-short-circuit {@code &}/{@code |} or arithmetic.
 */
public final class Kernels {
    private Kernels() {}

    // ---------------------------------------------------------------- step start

    /**
     * Step start, by the step kernel's thread 0: rewinds the layer counter, clears the status, and checks the step's
     * input on the device — row count, token ids, sequences, split count, DMS parameters, and that the decode tables
     * arrived (f16 0x3C00 is 1.0) — so a bad upload stops the step with a status code instead of reading out of bounds.
     */
    static void begin(IntArray step, FloatArray stepF, IntArray cfg, FloatArray cfgF, FloatArray lut, IntArray ctrl, IntArray status) {
        ctrl.set(LAYER, 0);
        status.set(STATUS_FULL, 0);
        status.set(STATUS_FULL_HEAD, 0);
        status.set(STATUS_NAN, 0);
        int n = step.get(N_ROWS), R = cfg.get(MAX_ROWS), vocab = cfg.get(VOCAB), seqs = cfg.get(MAX_SEQS);
        int splits = step.get(SPLITS_NOW);
        int bad = (n < 1 ? 1 : 0) | (n > R ? 1 : 0) | (splits < 1 ? 1 : 0) | (splits > cfg.get(MAX_SPLITS) ? 1 : 0);
        int rows = TornadoMath.min(n, R);
        for (int t = 0; t < rows; t++) {
            int tok = step.get(TOKENS + t);
            bad = bad | (tok < 0 ? 1 : 0) | (tok >= vocab ? 1 : 0);
            int seq = step.get(Layout.seqOff(R) + t);
            bad = bad | (seq < 0 ? 1 : 0) | (seq >= seqs ? 1 : 0);
            int fi = TornadoMath.max(0, TornadoMath.min(seq, seqs - 1)) * SLOT_FPARAMS + F_SCALE;
            bad = bad | (stepF.get(fi) != stepF.get(fi) ? 1 : 0); // NaN
        }
        bad = bad | (lut.get(LUT_F16 + 0x3C00) != 1f ? 1 : 0) | (cfgF.get(EPS) >= 0f ? 0 : 1);
        if (bad == 1) {
            status.set(STATUS_BAD_INPUT, 1);
            step.set(N_ROWS, 0); // every later kernel then does nothing
        } else {
            status.set(STATUS_BAD_INPUT, 0);
        }
    }

    // The step graph's one kernel: thread 0 runs begin, every thread looks up one element of the step's token
    // embeddings. The lookup does not wait for the check (no grid-wide barrier): it clamps rows and token ids so a bad
    // step reads nothing out of bounds, and the status word rejects the step. One variant per stored table type.

    /** Rows this step's lookup covers: the row count clamped to 0..MAX_ROWS. */
    static int embedRows(IntArray step, IntArray cfg) {
        return TornadoMath.min(TornadoMath.max(step.get(N_ROWS), 0), cfg.get(MAX_ROWS));
    }

    /** The row's token id clamped into the vocabulary. */
    static int embedToken(IntArray step, IntArray cfg, int t) {
        return TornadoMath.min(TornadoMath.max(step.get(TOKENS + t), 0), cfg.get(VOCAB) - 1);
    }

    public static void beginEmbedF32(KernelContext kc, FloatArray table, FloatArray lut, FloatArray x, IntArray step, FloatArray stepF, IntArray cfg,
                                     FloatArray cfgF, IntArray ctrl, IntArray status) {
        int i = kc.globalIdx, dim = cfg.get(DIM);
        if (i == 0) begin(step, stepF, cfg, cfgF, lut, ctrl, status);
        if (i < embedRows(step, cfg) * dim) {
            int t = i / dim, k = i - t * dim;
            x.set(i, table.get(embedToken(step, cfg, t) * dim + k));
        }
    }

    /** From an f16 table (bf16 when {@code bf16} is 1). */
    public static void beginEmbedF16(KernelContext kc, ShortArray table, FloatArray lut, FloatArray x, IntArray step, FloatArray stepF, IntArray cfg,
                                     FloatArray cfgF, IntArray ctrl, IntArray status, int bf16) {
        int i = kc.globalIdx, dim = cfg.get(DIM);
        if (i == 0) begin(step, stepF, cfg, cfgF, lut, ctrl, status);
        if (i < embedRows(step, cfg) * dim) {
            int t = i / dim, k = i - t * dim;
            int bits = table.get(embedToken(step, cfg, t) * dim + k) & 0xFFFF;
            x.set(i, lut.get(bf16 * LUT_BF16 + bits));
        }
    }

    /** From a Q8_0 table (blocks of 32: f16 scale, 32 int8). */
    public static void beginEmbedQ8(KernelContext kc, ByteArray table, FloatArray lut, FloatArray x, IntArray step, FloatArray stepF, IntArray cfg,
                                    FloatArray cfgF, IntArray ctrl, IntArray status) {
        int i = kc.globalIdx, dim = cfg.get(DIM);
        if (i == 0) begin(step, stepF, cfg, cfgF, lut, ctrl, status);
        if (i < embedRows(step, cfg) * dim) {
            int t = i / dim, k = i - t * dim;
            int e = embedToken(step, cfg, t) * dim + k;
            int o = (e / 32) * 34;
            float d = lut.get((table.get(o) & 0xFF) | ((table.get(o + 1) & 0xFF) << 8));
            x.set(i, d * table.get(o + 2 + e % 32));
        }
    }

    /** From a Q4_0 table (blocks of 32: f16 scale, 16 bytes of nibbles, low nibbles first). */
    public static void beginEmbedQ4(KernelContext kc, ByteArray table, FloatArray lut, FloatArray x, IntArray step, FloatArray stepF, IntArray cfg,
                                    FloatArray cfgF, IntArray ctrl, IntArray status) {
        int i = kc.globalIdx, dim = cfg.get(DIM);
        if (i == 0) begin(step, stepF, cfg, cfgF, lut, ctrl, status);
        if (i < embedRows(step, cfg) * dim) {
            int t = i / dim, k = i - t * dim;
            int e = embedToken(step, cfg, t) * dim + k;
            int o = (e / 32) * 18, j = e % 32;
            float d = lut.get((table.get(o) & 0xFF) | ((table.get(o + 1) & 0xFF) << 8));
            int b = table.get(o + 2 + (j & 15));
            int q = j < 16 ? (b & 15) : ((b >> 4) & 15);
            x.set(i, d * (q - 8));
        }
    }

    // ---------------------------------------------------------------- norms

    /**
     * RMSNorm of each row (one work-group per row): out = w * x / rms(x). {@code layered}: w holds every layer's
     * weights; {@code head}: rows are the logits rows (the last row only when the step asks for the last logits).
     */
    public static void rmsnorm(KernelContext kc, FloatArray in, FloatArray out, FloatArray w, IntArray step, IntArray cfg, FloatArray cfgF,
                               IntArray ctrl, int layered, int head) {
        int t = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        int n = step.get(N_ROWS), dim = cfg.get(DIM);
        int mode = step.get(LOGITS_MODE);
        int first = (head == 1 ? 1 : 0) * (mode == LOGITS_LAST ? 1 : 0) * (n - 1);
        if (head == 1 && mode == LOGITS_NONE) return;
        if (t < first || t >= n) return;
        float[] red = kc.allocateFloatLocalArray(MAX_LOCAL);
        float ss = 0f;
        for (int k = lid; k < dim; k += wg) { float v = in.get(t * dim + k); ss += v * v; }
        red[lid] = ss;
        for (int s = wg / 2; s > 0; s /= 2) {
            kc.localBarrier();
            if (lid < s) red[lid] += red[lid + s];
        }
        kc.localBarrier();
        float inv = 1f / TornadoMath.sqrt(red[0] / dim + cfgF.get(EPS));
        int wo = layered == 1 ? ctrl.get(LAYER) * dim : 0;
        for (int k = lid; k < dim; k += wg) out.set(t * dim + k, w.get(wo + k) * (in.get(t * dim + k) * inv));
    }

    /** Qwen3's per-head RMSNorm of q or k, in place (one work-group per (row, head)). */
    public static void headNorm(KernelContext kc, FloatArray vec, FloatArray w, IntArray step, IntArray cfg, FloatArray cfgF, IntArray ctrl, int nHeads) {
        int gi = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        int n = step.get(N_ROWS), hd = cfg.get(HEAD_DIM);
        int t = gi / nHeads, h = gi - t * nHeads;
        if (t >= n) return;
        float[] red = kc.allocateFloatLocalArray(MAX_LOCAL);
        int base = (t * nHeads + h) * hd;
        float ss = 0f;
        for (int k = lid; k < hd; k += wg) { float v = vec.get(base + k); ss += v * v; }
        red[lid] = ss;
        for (int s = wg / 2; s > 0; s /= 2) {
            kc.localBarrier();
            if (lid < s) red[lid] += red[lid + s];
        }
        kc.localBarrier();
        float inv = 1f / TornadoMath.sqrt(red[0] / hd + cfgF.get(EPS));
        int wo = ctrl.get(LAYER) * hd;
        kc.localBarrier();
        for (int k = lid; k < hd; k += wg) vec.set(base + k, w.get(wo + k) * (vec.get(base + k) * inv));
    }

    // ---------------------------------------------------------------- matrix products

    /**
     * out[t][r] (+)= W[r] · in[t] for the step's rows t, one work-group per output row r (threads split the columns,
     * a local tree reduction sums them). All rows of the step reuse the weight row while it is in cache: prefill is
     * matrix-matrix work. {@code layered}: 0 one matrix, 1 the layer at ctrl[LAYER], 2 the layer at
     * ctrl[LAYER_NEXT] - 1, and then thread 0 moves ctrl[LAYER] on (the pass's last kernel). {@code accumulate}: add to out (the residual stream). {@code head}: the logits rows.
     */
    public static void matmulF32(KernelContext kc, FloatArray w, FloatArray in, FloatArray out, IntArray step, IntArray ctrl,
                                 int rowsOut, int cols, int layered, int accumulate, int head) {
        int r = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        if ((layered == 2 ? 1 : 0) * (r == 0 ? 1 : 0) * (lid == 0 ? 1 : 0) == 1) ctrl.set(LAYER, ctrl.get(LAYER_NEXT));
        int n = step.get(N_ROWS), mode = step.get(LOGITS_MODE);
        if (head == 1 && mode == LOGITS_NONE) return;
        int first = (head == 1 ? 1 : 0) * (mode == LOGITS_LAST ? 1 : 0) * (n - 1);
        float[] red = kc.allocateFloatLocalArray(MAX_LOCAL);
        int base = ((layered == 1 ? ctrl.get(LAYER) * rowsOut : 0) + (layered == 2 ? (ctrl.get(LAYER_NEXT) - 1) * rowsOut : 0) + r) * cols;
        for (int t = first; t < n; t++) {
            float sum = 0f;
            for (int k = lid; k < cols; k += wg) sum += w.get(base + k) * in.get(t * cols + k);
            red[lid] = sum;
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if (lid == 0) {
                int o = t * rowsOut + r;
                out.set(o, accumulate == 1 ? out.get(o) + red[0] : red[0]);
            }
            kc.localBarrier();
        }
    }

    /** As {@link #matmulF32} for f16 weights (bf16 when {@code bf16} is 1), decoded through the table. */
    public static void matmulF16(KernelContext kc, ShortArray w, FloatArray lut, FloatArray in, FloatArray out, IntArray step, IntArray ctrl,
                                 int rowsOut, int cols, int layered, int accumulate, int head, int bf16) {
        int r = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        if ((layered == 2 ? 1 : 0) * (r == 0 ? 1 : 0) * (lid == 0 ? 1 : 0) == 1) ctrl.set(LAYER, ctrl.get(LAYER_NEXT));
        int n = step.get(N_ROWS), mode = step.get(LOGITS_MODE);
        if (head == 1 && mode == LOGITS_NONE) return;
        int first = (head == 1 ? 1 : 0) * (mode == LOGITS_LAST ? 1 : 0) * (n - 1);
        float[] red = kc.allocateFloatLocalArray(MAX_LOCAL);
        int base = ((layered == 1 ? ctrl.get(LAYER) * rowsOut : 0) + (layered == 2 ? (ctrl.get(LAYER_NEXT) - 1) * rowsOut : 0) + r) * cols;
        int lo = bf16 * LUT_BF16;
        for (int t = first; t < n; t++) {
            float sum = 0f;
            for (int k = lid; k < cols; k += wg) sum += lut.get(lo + (w.get(base + k) & 0xFFFF)) * in.get(t * cols + k);
            red[lid] = sum;
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if (lid == 0) {
                int o = t * rowsOut + r;
                out.set(o, accumulate == 1 ? out.get(o) + red[0] : red[0]);
            }
            kc.localBarrier();
        }
    }

    /** As {@link #matmulF32} for Q8_0 weights: per block of 32, an f16 scale and 32 int8 values (34 bytes). */
    public static void matmulQ8(KernelContext kc, ByteArray w, FloatArray lut, FloatArray in, FloatArray out, IntArray step, IntArray ctrl,
                                int rowsOut, int cols, int layered, int accumulate, int head) {
        int r = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        if ((layered == 2 ? 1 : 0) * (r == 0 ? 1 : 0) * (lid == 0 ? 1 : 0) == 1) ctrl.set(LAYER, ctrl.get(LAYER_NEXT));
        int n = step.get(N_ROWS), mode = step.get(LOGITS_MODE);
        if (head == 1 && mode == LOGITS_NONE) return;
        int first = (head == 1 ? 1 : 0) * (mode == LOGITS_LAST ? 1 : 0) * (n - 1);
        float[] red = kc.allocateFloatLocalArray(MAX_LOCAL);
        int blocks = cols / 32;
        int base = ((layered == 1 ? ctrl.get(LAYER) * rowsOut : 0) + (layered == 2 ? (ctrl.get(LAYER_NEXT) - 1) * rowsOut : 0) + r) * blocks * 34;
        for (int t = first; t < n; t++) {
            red[lid] = partialQ8(w, lut, base, in, t * cols, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if (lid == 0) {
                int o = t * rowsOut + r;
                out.set(o, accumulate == 1 ? out.get(o) + red[0] : red[0]);
            }
            kc.localBarrier();
        }
    }

    /** As {@link #matmulF32} for Q4_0 weights: per block of 32, an f16 scale and 16 bytes (element j: low nibble of byte j, j+16: high). */
    public static void matmulQ4(KernelContext kc, ByteArray w, FloatArray lut, FloatArray in, FloatArray out, IntArray step, IntArray ctrl,
                                int rowsOut, int cols, int layered, int accumulate, int head) {
        int r = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        if ((layered == 2 ? 1 : 0) * (r == 0 ? 1 : 0) * (lid == 0 ? 1 : 0) == 1) ctrl.set(LAYER, ctrl.get(LAYER_NEXT));
        int n = step.get(N_ROWS), mode = step.get(LOGITS_MODE);
        if (head == 1 && mode == LOGITS_NONE) return;
        int first = (head == 1 ? 1 : 0) * (mode == LOGITS_LAST ? 1 : 0) * (n - 1);
        float[] red = kc.allocateFloatLocalArray(MAX_LOCAL);
        int blocks = cols / 32;
        int base = ((layered == 1 ? ctrl.get(LAYER) * rowsOut : 0) + (layered == 2 ? (ctrl.get(LAYER_NEXT) - 1) * rowsOut : 0) + r) * blocks * 18;
        for (int t = first; t < n; t++) {
            red[lid] = partialQ4(w, lut, base, in, t * cols, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if (lid == 0) {
                int o = t * rowsOut + r;
                out.set(o, accumulate == 1 ? out.get(o) + red[0] : red[0]);
            }
            kc.localBarrier();
        }
    }

    // ---------------------------------------------------------------- RoPE, DMS decision and the compacted cache

    /**
     * RoPE, the DMS decision, channel zeroing and the compacted-cache append in one kernel: one work-group per
     * (sequence, KV head), at the sequence's first row of the step (the others' groups do nothing; appends must be
     * ordered per head). Three phases, with barriers between them and outside every branch:
     * <ol>
     *   <li>the work-group rotates the head's key of each of the sequence's rows (RoPE at the row's position:
     *   adjacent pairs, or halves for Hugging Face weights);</li>
     *   <li>thread 0 walks the rows in order. For a DMS sequence, the decision comes from the last channel of the
     *   group's first query head before RoPE ({@code scale * q[d-1] - offset > 0}, or the benchmark's forced hash),
     *   goes to the decision log, and that channel is zeroed; then the row is appended as in cache's
     *   {@code DmsStep.append}: under the NVIDIA convention the decision flags the previous token; before the
     *   sequence's first row the slots of flagged tokens that no query from here on can see are reclaimed (the last
     *   slot moves into the hole, so live slots stay dense); the row takes slot {@code live}. {@code ring} maps the
     *   positions still inside the window to their slots; a full head sets {@code status} (the host stops);</li>
     *   <li>the work-group rotates the group's query heads; the borrowed channel is zeroed again after RoPE.</li>
     * </ol>
     * Mirrors cache's DmsStep.decidedPosition, DmsStep.forcedEviction, DmsConfig.evicts and DmsStep.append (with
     * HeadKv.markEvicted, reclaim and removeSlot on the device's slot arrays). RoPE frequencies are read from the
     * table at {@link Layout#LUT_ROPE}.
     */
    public static void ropeAppend(KernelContext kc, FloatArray q, FloatArray k, FloatArray v, IntArray step, FloatArray stepF, IntArray cfg,
                                  IntArray ctrl, ByteArray log, IntArray headState, IntArray slotMeta, IntArray ring, FloatArray kF,
                                  FloatArray vF, ByteArray kB, ByteArray vB, FloatArray kS, FloatArray vS, FloatArray lut, IntArray status) {
        int gi = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        int kvHeads = cfg.get(KV_HEADS), R = cfg.get(MAX_ROWS);
        int t = gi / kvHeads, g = gi - t * kvHeads;
        int n = step.get(N_ROWS);
        if (t >= n) return;
        int seqOff = Layout.seqOff(R), posOff = Layout.posOff(R);
        int seq = step.get(seqOff + t);
        if (t > 0 && step.get(seqOff + t - 1) == seq) return; // not the sequence's first row
        int end = t + 1;
        for (int j = t + 1; j < n; j++) {
            if (step.get(seqOff + j) != seq) break;
            end = j + 1;
        }
        int rows = end - t;
        int hd = cfg.get(HEAD_DIM), half = hd / 2, heads = cfg.get(HEADS), group = cfg.get(GROUP), ropeHalf = cfg.get(ROPE_HALF);
        int pb = Layout.paramOff(R) + seq * SLOT_PARAMS;
        int dmsOn = step.get(pb + P_DMS);
        // 1: the keys
        for (int i = lid; i < rows * half; i += wg) {
            int jr = i / half, p = i - jr * half;
            rotatePair(k, ((t + jr) * kvHeads + g) * hd, p, half, step.get(posOff + t + jr), lut, ropeHalf);
        }
        kc.globalBarrier();
        // 2: decisions and appends, in row order
        if (lid == 0) {
            int L = cfg.get(LAYERS), cap = cfg.get(SLOTS), ringN = cfg.get(RING), layer = ctrl.get(LAYER);
            int kvType = cfg.get(KV_TYPE), blocks = cfg.get(KV_BLOCKS), kvDim = cfg.get(KV_DIM);
            int head = (seq * L + layer) * kvHeads + g;
            int window = step.get(pb + P_WINDOW), nvidia = step.get(pb + P_NVIDIA), forced = step.get(pb + P_FORCED);
            long thr = ((long) step.get(pb + P_THR_HI) << 32) | (step.get(pb + P_THR_LO) & 0xFFFFFFFFL);
            float dScale = stepF.get(seq * SLOT_FPARAMS + F_SCALE), dOffset = stepF.get(seq * SLOT_FPARAMS + F_OFFSET);
            int logOn = cfg.get(LOG_ON), logCtx = cfg.get(LOG_CTX);
            int live = headState.get(2 * head), pending = headState.get(2 * head + 1);
            int ringBase = head * ringN, slotBase = head * cap;
            for (int j = t; j < end; j++) {
                int pos = step.get(posOff + j);
                if (pos == 0) { live = 0; pending = 0; } // a new sequence in this slot
                // the decision, computed branch-free (read and hashed also where DMS is off, then multiplied away)
                int qc = (j * heads + g * group) * hd + hd - 1; // the borrowed channel
                int decided = pos - nvidia;
                long hash = (decided * 0x9E3779B97F4A7C15L) ^ ((long) layer << 40) ^ ((long) g << 20);
                // the JVM's hash with its unsigned shifts written as masked signed shifts: TornadoVM 5.2.1 emits a
                // long ">>>" as OpenCL's arithmetic ">>"
                hash ^= (hash >> 31) & 0x1FFFFFFFFL;
                hash *= 0xBF58476D1CE4E5B9L;
                hash ^= (hash >> 29) & 0x7FFFFFFFFL;
                int byHash = ((hash >> 11) & 0x1FFFFFFFFFFFFFL) < thr ? 1 : 0;
                int byAlpha = dScale * q.get(qc) - dOffset > 0f ? 1 : 0;
                int evict = dmsOn * (forced * byHash + (1 - forced) * byAlpha);
                if (dmsOn == 1) {
                    if ((logOn == 1 ? 1 : 0) * (decided >= 0 ? 1 : 0) == 1) {
                        log.set(((seq * L + layer) * kvHeads + g) * logCtx + decided, (byte) (evict + 1));
                    }
                    q.set(qc, 0f);
                }
                if (evict * nvidia * (pos > 0 ? 1 : 0) == 1) {
                    int ps = ring.get(ringBase + (pos - 1) % ringN);
                    slotMeta.set(2 * (slotBase + ps) + 1, 1);
                }
                if (j == t && dmsOn == 1) {
                    // reclaim(pos): tokens whose window has closed for every query from pos on (the helper works on
                    // headState, so this head's running counts go through it)
                    headState.set(2 * head, live);
                    headState.set(2 * head + 1, pending);
                    reclaimHead(headState, slotMeta, ring, kF, vF, kB, vB, kS, vS, cfg, head, pos, window);
                    live = headState.get(2 * head);
                    pending = headState.get(2 * head + 1);
                }
                if (live >= cap) {
                    status.set(STATUS_FULL, 1);
                    status.set(STATUS_FULL_HEAD, head);
                    break;
                }
                int slot = live;
                live++;
                int src = j * kvDim + g * hd, row = slotBase + slot;
                if (kvType == KV_F32) {
                    for (int d = 0; d < hd; d++) {
                        kF.set(row * hd + d, k.get(src + d));
                        vF.set(row * hd + d, v.get(src + d));
                    }
                } else if (kvType == KV_Q8) {
                    quantizeQ8Row(k, src, kB, kS, blocks, hd, row);
                    quantizeQ8Row(v, src, vB, vS, blocks, hd, row);
                } else {
                    quantizeFp8Row(k, src, kB, kS, lut, hd, row);
                    quantizeFp8Row(v, src, vB, vS, lut, hd, row);
                }
                slotMeta.set(2 * (slotBase + slot), pos);
                slotMeta.set(2 * (slotBase + slot) + 1, evict * (1 - nvidia));
                if (dmsOn == 1) ring.set(ringBase + pos % ringN, slot);
                else pending = pos + 1;
            }
            headState.set(2 * head, live);
            headState.set(2 * head + 1, pending);
        }
        kc.globalBarrier();
        // 3: the group's query heads
        for (int i = lid; i < rows * group * half; i += wg) {
            int jr = i / (group * half), rem = i - jr * group * half;
            int hh = rem / half, p = rem - hh * half;
            int base = ((t + jr) * heads + g * group + hh) * hd;
            rotatePair(q, base, p, half, step.get(posOff + t + jr), lut, ropeHalf);
            if (dmsOn * (hh == 0 ? 1 : 0) * (p == half - 1 ? 1 : 0) == 1) q.set(base + hd - 1, 0f);
        }
    }

    /** RoPE of pair {@code j} of the head vector at {@code base} (adjacent pairs, or halves when {@code ropeHalf} is 1). */
    static void rotatePair(FloatArray a, int base, int j, int half, int pos, FloatArray lut, int ropeHalf) {
        double angle = pos * (double) lut.get(LUT_ROPE + j);
        float cs = (float) TornadoMath.cos(angle), sn = (float) TornadoMath.sin(angle);
        int ia = base + j + (1 - ropeHalf) * j;
        int ib = base + j + ropeHalf * half + (1 - ropeHalf) * (j + 1);
        float x0 = a.get(ia), x1 = a.get(ib);
        float r0 = x0 * cs - x1 * sn, r1 = x0 * sn + x1 * cs;
        a.set(ia, r0);
        a.set(ib, r1);
    }

    /**
     * Frees one head's slots of flagged keys whose window has closed for every query from {@code pos} on, moving the
     * last live row into each freed slot; its live count and pending position are read from and written back to
     * {@code headState}. Mirrors the reclaim in cache's HeadKv (DmsStep.endStep), for the end-of-step reclaim and the
     * one before a sequence's first row is appended.
     */
    static void reclaimHead(IntArray headState, IntArray slotMeta, IntArray ring, FloatArray kF, FloatArray vF, ByteArray kB, ByteArray vB,
                            FloatArray kS, FloatArray vS, IntArray cfg, int head, int pos, int window) {
        int hd = cfg.get(HEAD_DIM), cap = cfg.get(SLOTS), ringN = cfg.get(RING), kvType = cfg.get(KV_TYPE), blocks = cfg.get(KV_BLOCKS);
        int live = headState.get(2 * head), pending = headState.get(2 * head + 1);
        int ringBase = head * ringN, slotBase = head * cap;
        while (pending < pos && pos - pending > window) {
            int s = ring.get(ringBase + pending % ringN);
            pending++;
            if (slotMeta.get(2 * (slotBase + s) + 1) == 1) {
                int last = live - 1;
                if (s != last) {
                    moveRow(kF, vF, kB, vB, kS, vS, kvType, blocks, hd, slotBase + last, slotBase + s);
                    int lp = slotMeta.get(2 * (slotBase + last));
                    slotMeta.set(2 * (slotBase + s), lp);
                    slotMeta.set(2 * (slotBase + s) + 1, slotMeta.get(2 * (slotBase + last) + 1));
                    if (lp >= pending) ring.set(ringBase + lp % ringN, s);
                }
                live--;
            }
        }
        headState.set(2 * head, live);
        headState.set(2 * head + 1, pending);
    }

    /** Copies cache row {@code from} over row {@code to} (keys, values, their scales). */
    static void moveRow(FloatArray kF, FloatArray vF, ByteArray kB, ByteArray vB, FloatArray kS, FloatArray vS,
                        int kvType, int blocks, int hd, int from, int to) {
        if (kvType == KV_F32) {
            for (int d = 0; d < hd; d++) {
                kF.set(to * hd + d, kF.get(from * hd + d));
                vF.set(to * hd + d, vF.get(from * hd + d));
            }
        } else {
            for (int d = 0; d < hd; d++) {
                kB.set(to * hd + d, kB.get(from * hd + d));
                vB.set(to * hd + d, vB.get(from * hd + d));
            }
            for (int b = 0; b < blocks; b++) {
                kS.set(to * blocks + b, kS.get(from * blocks + b));
                vS.set(to * blocks + b, vS.get(from * blocks + b));
            }
        }
    }

    /** One row into Q8: one scale per block (32 values, or the row). Mirrors cache's Q8Block.quantize. */
    static void quantizeQ8Row(FloatArray in, int src, ByteArray out, FloatArray sc, int blocks, int hd, int row) {
        int bl = hd / blocks;
        for (int b = 0; b < blocks; b++) {
            float max = 0f;
            for (int d = 0; d < bl; d++) max = TornadoMath.max(max, TornadoMath.abs(in.get(src + b * bl + d)));
            // divisions in double: OpenCL's float division may be an ulp off, double's is exact and rounds to the same float
            float s = (float) (max / 127.0);
            float inv = s == 0f ? 0f : (float) (1.0 / s);
            sc.set(row * blocks + b, s);
            for (int d = 0; d < bl; d++) {
                float x = in.get(src + b * bl + d) * inv;
                // round half away from zero, in double where |x| + 0.5 is exact
                int m = (int) TornadoMath.floor(TornadoMath.abs((double) x) + 0.5);
                out.set(row * hd + b * bl + d, (byte) (x < 0f ? -m : m));
            }
        }
    }

    /** One row into FP8 E4M3 with one absmax/448 scale. */
    static void quantizeFp8Row(FloatArray in, int src, ByteArray out, FloatArray sc, FloatArray lut, int hd, int row) {
        float max = 0f;
        for (int d = 0; d < hd; d++) max = TornadoMath.max(max, TornadoMath.abs(in.get(src + d)));
        float s = max == 0f ? 1f : max / 448f;
        float inv = 1f / s;
        sc.set(row, s);
        for (int d = 0; d < hd; d++) out.set(row * hd + d, (byte) encodeFp8(in.get(src + d) * inv, lut));
    }

    /** Nearest E4M3 code (ties to the even code), saturating at 448: a binary search over the table's 127 magnitudes. */
    static int encodeFp8(float x, FloatArray lut) {
        int sign = x < 0f ? 0x80 : 0;
        float m = TornadoMath.min(TornadoMath.abs(x), 448f); // 448..464 rounds to 448 anyway; above saturates
        int lo = 0, hi = 0x7E;
        while (lo < hi) {
            int mid = (lo + hi + 1) / 2;
            if (lut.get(LUT_FP8 + mid) <= m) lo = mid; else hi = mid - 1;
        }
        int next = TornadoMath.min(lo + 1, 0x7E);
        float below = m - lut.get(LUT_FP8 + lo), above = lut.get(LUT_FP8 + next) - m;
        int up = (above < below ? 1 : 0) | ((above == below ? 1 : 0) & (lo & 1));
        return sign | (lo + up * (lo < 0x7E ? 1 : 0));
    }

    // ---------------------------------------------------------------- attention (flash-decoding)

    /**
     * Partial attention of one (row, query head) over one split of {@link Layout#CHUNK} live slots of its KV head
     * (one work-group per split): scores of the visible slots (DMS: p <= q and (q - p <= window or not flagged)), their
     * max m, sum l of exp(s - m) and the exp-weighted value sum. {@link #attnCombine} merges the splits with the
     * log-sum-exp rule. Keys and values are read in their stored type. The visibility test mirrors cache's DmsStep.visible.
     */
    public static void attnPartial(KernelContext kc, FloatArray q, IntArray step, IntArray cfg, FloatArray cfgF, IntArray ctrl, IntArray headState,
                                   IntArray slotMeta, FloatArray kF, FloatArray vF, ByteArray kB, ByteArray vB, FloatArray kS, FloatArray vS,
                                   FloatArray lut, FloatArray part) {
        int gi = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        int heads = cfg.get(HEADS), splits = step.get(SPLITS_NOW), R = cfg.get(MAX_ROWS);
        int split = gi % splits, th = gi / splits;
        int t = th / heads, h = th - t * heads;
        if (t >= step.get(N_ROWS)) return;
        int kvHeads = cfg.get(KV_HEADS), hd = cfg.get(HEAD_DIM), L = cfg.get(LAYERS), cap = cfg.get(SLOTS);
        int kvType = cfg.get(KV_TYPE), blocks = cfg.get(KV_BLOCKS);
        int seq = step.get(Layout.seqOff(R) + t), pos = step.get(Layout.posOff(R) + t);
        int pb = Layout.paramOff(R) + seq * SLOT_PARAMS;
        int window = step.get(pb + P_DMS) == 1 ? step.get(pb + P_WINDOW) : 2147483647;
        int head = (seq * L + ctrl.get(LAYER)) * kvHeads + h / cfg.get(GROUP);
        int live = headState.get(2 * head);
        int s0 = split * CHUNK;
        if (s0 >= live) return;
        int cnt = TornadoMath.min(CHUNK, live - s0);
        int slotBase = head * cap + s0;
        float scale = cfgF.get(ATTN_SCALE);
        int qo = (t * heads + h) * hd;
        float[] sc = kc.allocateFloatLocalArray(CHUNK);
        float[] red = kc.allocateFloatLocalArray(MAX_LOCAL);
        float myMax = Float.NEGATIVE_INFINITY;
        for (int j = lid; j < cnt; j += wg) {
            int row = slotBase + j;
            int p = slotMeta.get(2 * row);
            int visible = (p <= pos ? 1 : 0) & ((pos - p <= window ? 1 : 0) | (slotMeta.get(2 * row + 1) == 0 ? 1 : 0)); // DmsStep.visible
            sc[j] = Float.NEGATIVE_INFINITY;
            if (visible == 1) {
                if (kvType == KV_F32) {
                    float dot = 0f;
                    for (int d = 0; d < hd; d++) dot += q.get(qo + d) * kF.get(row * hd + d);
                    sc[j] = dot * scale;
                }
                if (kvType == KV_Q8) {
                    int bl = hd / blocks;
                    float dot = 0f;
                    for (int b = 0; b < blocks; b++) {
                        float part8 = 0f;
                        for (int d = 0; d < bl; d++) part8 += q.get(qo + b * bl + d) * kB.get(row * hd + b * bl + d);
                        dot += part8 * kS.get(row * blocks + b);
                    }
                    sc[j] = dot * scale;
                }
                if (kvType == KV_FP8) {
                    float dot = 0f;
                    for (int d = 0; d < hd; d++) {
                        int c = kB.get(row * hd + d) & 0xFF;
                        float mag = lut.get(LUT_FP8 + (c & 0x7F));
                        dot += q.get(qo + d) * (c >= 128 ? -mag : mag);
                    }
                    sc[j] = dot * kS.get(row) * scale;
                }
            }
            myMax = TornadoMath.max(myMax, sc[j]);
        }
        red[lid] = myMax;
        for (int st = wg / 2; st > 0; st /= 2) {
            kc.localBarrier();
            if (lid < st) red[lid] = TornadoMath.max(red[lid], red[lid + st]);
        }
        kc.localBarrier();
        float m = red[0];
        kc.localBarrier();
        float mySum = 0f;
        for (int j = lid; j < cnt; j += wg) {
            float e = sc[j] == Float.NEGATIVE_INFINITY ? 0f : TornadoMath.exp(sc[j] - m);
            sc[j] = e;
            mySum += e;
        }
        red[lid] = mySum;
        for (int st = wg / 2; st > 0; st /= 2) {
            kc.localBarrier();
            if (lid < st) red[lid] += red[lid + st];
        }
        kc.localBarrier();
        int po = ((t * heads + h) * splits + split) * (hd + 2);
        if (lid == 0) {
            part.set(po, m);
            part.set(po + 1, red[0]);
        }
        for (int d = lid; d < hd; d += wg) {
            if (kvType == KV_F32) {
                float acc = 0f;
                for (int j = 0; j < cnt; j++) acc += sc[j] * vF.get((slotBase + j) * hd + d);
                part.set(po + 2 + d, acc);
            }
            if (kvType == KV_Q8) {
                float acc = 0f;
                int b = d / (hd / blocks);
                for (int j = 0; j < cnt; j++) acc += sc[j] * (vB.get((slotBase + j) * hd + d) * vS.get((slotBase + j) * blocks + b));
                part.set(po + 2 + d, acc);
            }
            if (kvType == KV_FP8) {
                float acc = 0f;
                for (int j = 0; j < cnt; j++) {
                    int c = vB.get((slotBase + j) * hd + d) & 0xFF;
                    float mag = lut.get(LUT_FP8 + (c & 0x7F));
                    acc += sc[j] * ((c >= 128 ? -mag : mag) * vS.get(slotBase + j));
                }
                part.set(po + 2 + d, acc);
            }
        }
    }

    /** Merges the splits of one (row, query head): out = Σ acc_s e^(m_s - M) / Σ l_s e^(m_s - M). */
    public static void attnCombine(KernelContext kc, FloatArray part, FloatArray att, IntArray step, IntArray cfg, IntArray ctrl, IntArray headState) {
        int gi = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        int heads = cfg.get(HEADS), R = cfg.get(MAX_ROWS);
        int t = gi / heads, h = gi - t * heads;
        if (t >= step.get(N_ROWS)) return;
        int kvHeads = cfg.get(KV_HEADS), hd = cfg.get(HEAD_DIM), L = cfg.get(LAYERS), splits = step.get(SPLITS_NOW);
        int seq = step.get(Layout.seqOff(R) + t);
        int head = (seq * L + ctrl.get(LAYER)) * kvHeads + h / cfg.get(GROUP);
        int used = (headState.get(2 * head) + CHUNK - 1) / CHUNK;
        int pb = ((t * heads + h) * splits) * (hd + 2);
        float mx = Float.NEGATIVE_INFINITY;
        for (int s = 0; s < used; s++) mx = TornadoMath.max(mx, part.get(pb + s * (hd + 2)));
        float total = 0f;
        for (int s = 0; s < used; s++) {
            float ms = part.get(pb + s * (hd + 2));
            if (ms != Float.NEGATIVE_INFINITY) total += part.get(pb + s * (hd + 2) + 1) * TornadoMath.exp(ms - mx);
        }
        for (int d = lid; d < hd; d += wg) {
            float acc = 0f;
            for (int s = 0; s < used; s++) {
                float ms = part.get(pb + s * (hd + 2));
                if (ms != Float.NEGATIVE_INFINITY) acc += part.get(pb + s * (hd + 2) + 2 + d) * TornadoMath.exp(ms - mx);
            }
            att.set((t * heads + h) * hd + d, acc / total);
        }
    }

    // ---------------------------------------------------------------- feed-forward, layer counter, logits

    /** hb = silu(hb) * hb2 over the step's rows; thread 0 also sets ctrl[LAYER_NEXT] for the down projection. */
    public static void swiglu(KernelContext kc, FloatArray hb, FloatArray hb2, IntArray step, IntArray cfg, IntArray ctrl) {
        int i = kc.globalIdx;
        if (i == 0) ctrl.set(LAYER_NEXT, ctrl.get(LAYER) + 1);
        if (i >= step.get(N_ROWS) * cfg.get(FFN)) return;
        float g = hb.get(i);
        hb.set(i, g / (1f + TornadoMath.exp(-g)) * hb2.get(i));
    }

    // ---------------------------------------------------------------- fused products of the layer and the head
    // Each work-group makes one output row. Where an RMSNorm feeds the product, every work-group recomputes the norm
    // of the row it reads (a tree reduction over dim values, cheap beside the weight row) and applies it element by
    // element as the separate norm kernel did, w[k] * (x[k] / rms): no normed copy of the input, no launch of its
    // own. One variant per stored weight type; the shared row dots are the partial* helpers below.

    /** Attention RMSNorm, then the q, k and v projections (f32 weights): groups below qDim make a q row, the others a k row and the v row of the same index. Barriers sit outside the branches and each branch stores its product to local memory (PoCL). */
    public static void qkvNormF32(KernelContext kc, FloatArray wq, FloatArray wk, FloatArray wv, FloatArray x, FloatArray nw, FloatArray cfgF,
                                 FloatArray q, FloatArray k, FloatArray v, IntArray step, IntArray ctrl, int qDim, int kvDim, int cols) {
        int gi = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        int layer = ctrl.get(LAYER), n = step.get(N_ROWS), rowLen = cols;
        int j = gi - qDim; // the k/v row of the groups from qDim on
        int no = layer * cols;
        float eps = cfgF.get(EPS);
        float[] red = kc.allocateFloatLocalArray(MAX_LOCAL);
        for (int t = 0; t < n; t++) {
            float ss = 0f;
            for (int c = lid; c < cols; c += wg) { float xv = x.get(t * cols + c); ss += xv * xv; }
            red[lid] = ss;
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            kc.localBarrier();
            float inv = 1f / TornadoMath.sqrt(red[0] / cols + eps);
            kc.localBarrier();
            if (gi < qDim) red[lid] = partialF32N(wq, (layer * qDim + gi) * rowLen, x, t * cols, nw, no, inv, cols, lid, wg);
            else red[lid] = partialF32N(wk, (layer * kvDim + j) * rowLen, x, t * cols, nw, no, inv, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if ((lid == 0 ? 1 : 0) * (gi < qDim ? 1 : 0) == 1) q.set(t * qDim + gi, red[0]);
            if ((lid == 0 ? 1 : 0) * (gi >= qDim ? 1 : 0) == 1) k.set(t * kvDim + j, red[0]);
            kc.localBarrier();
            red[lid] = 0f;
            if (gi >= qDim) red[lid] = partialF32N(wv, (layer * kvDim + j) * rowLen, x, t * cols, nw, no, inv, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if ((lid == 0 ? 1 : 0) * (gi >= qDim ? 1 : 0) == 1) v.set(t * kvDim + j, red[0]);
            kc.localBarrier();
        }
    }

    /** Attention RMSNorm, then the q, k and v projections (f16 (bf16 when bf16 is 1) weights): groups below qDim make a q row, the others a k row and the v row of the same index. Barriers sit outside the branches and each branch stores its product to local memory (PoCL). */
    public static void qkvNormF16(KernelContext kc, ShortArray wq, ShortArray wk, ShortArray wv, FloatArray lut, FloatArray x, FloatArray nw, FloatArray cfgF,
                                 FloatArray q, FloatArray k, FloatArray v, IntArray step, IntArray ctrl, int qDim, int kvDim, int cols, int bf16) {
        int gi = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        int layer = ctrl.get(LAYER), n = step.get(N_ROWS), rowLen = cols;
        int j = gi - qDim; // the k/v row of the groups from qDim on
        int no = layer * cols;
        float eps = cfgF.get(EPS);
        int lo = bf16 * LUT_BF16;
        float[] red = kc.allocateFloatLocalArray(MAX_LOCAL);
        for (int t = 0; t < n; t++) {
            float ss = 0f;
            for (int c = lid; c < cols; c += wg) { float xv = x.get(t * cols + c); ss += xv * xv; }
            red[lid] = ss;
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            kc.localBarrier();
            float inv = 1f / TornadoMath.sqrt(red[0] / cols + eps);
            kc.localBarrier();
            if (gi < qDim) red[lid] = partialF16N(wq, lut, lo, (layer * qDim + gi) * rowLen, x, t * cols, nw, no, inv, cols, lid, wg);
            else red[lid] = partialF16N(wk, lut, lo, (layer * kvDim + j) * rowLen, x, t * cols, nw, no, inv, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if ((lid == 0 ? 1 : 0) * (gi < qDim ? 1 : 0) == 1) q.set(t * qDim + gi, red[0]);
            if ((lid == 0 ? 1 : 0) * (gi >= qDim ? 1 : 0) == 1) k.set(t * kvDim + j, red[0]);
            kc.localBarrier();
            red[lid] = 0f;
            if (gi >= qDim) red[lid] = partialF16N(wv, lut, lo, (layer * kvDim + j) * rowLen, x, t * cols, nw, no, inv, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if ((lid == 0 ? 1 : 0) * (gi >= qDim ? 1 : 0) == 1) v.set(t * kvDim + j, red[0]);
            kc.localBarrier();
        }
    }

    /** Attention RMSNorm, then the q, k and v projections (Q8_0 weights): groups below qDim make a q row, the others a k row and the v row of the same index. Barriers sit outside the branches and each branch stores its product to local memory (PoCL). */
    public static void qkvNormQ8(KernelContext kc, ByteArray wq, ByteArray wk, ByteArray wv, FloatArray lut, FloatArray x, FloatArray nw, FloatArray cfgF,
                                 FloatArray q, FloatArray k, FloatArray v, IntArray step, IntArray ctrl, int qDim, int kvDim, int cols) {
        int gi = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        int layer = ctrl.get(LAYER), n = step.get(N_ROWS), rowLen = cols / 32 * 34;
        int j = gi - qDim; // the k/v row of the groups from qDim on
        int no = layer * cols;
        float eps = cfgF.get(EPS);
        float[] red = kc.allocateFloatLocalArray(MAX_LOCAL);
        for (int t = 0; t < n; t++) {
            float ss = 0f;
            for (int c = lid; c < cols; c += wg) { float xv = x.get(t * cols + c); ss += xv * xv; }
            red[lid] = ss;
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            kc.localBarrier();
            float inv = 1f / TornadoMath.sqrt(red[0] / cols + eps);
            kc.localBarrier();
            if (gi < qDim) red[lid] = partialQ8N(wq, lut, (layer * qDim + gi) * rowLen, x, t * cols, nw, no, inv, cols, lid, wg);
            else red[lid] = partialQ8N(wk, lut, (layer * kvDim + j) * rowLen, x, t * cols, nw, no, inv, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if ((lid == 0 ? 1 : 0) * (gi < qDim ? 1 : 0) == 1) q.set(t * qDim + gi, red[0]);
            if ((lid == 0 ? 1 : 0) * (gi >= qDim ? 1 : 0) == 1) k.set(t * kvDim + j, red[0]);
            kc.localBarrier();
            red[lid] = 0f;
            if (gi >= qDim) red[lid] = partialQ8N(wv, lut, (layer * kvDim + j) * rowLen, x, t * cols, nw, no, inv, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if ((lid == 0 ? 1 : 0) * (gi >= qDim ? 1 : 0) == 1) v.set(t * kvDim + j, red[0]);
            kc.localBarrier();
        }
    }

    /** Attention RMSNorm, then the q, k and v projections (Q4_0 weights): groups below qDim make a q row, the others a k row and the v row of the same index. Barriers sit outside the branches and each branch stores its product to local memory (PoCL). */
    public static void qkvNormQ4(KernelContext kc, ByteArray wq, ByteArray wk, ByteArray wv, FloatArray lut, FloatArray x, FloatArray nw, FloatArray cfgF,
                                 FloatArray q, FloatArray k, FloatArray v, IntArray step, IntArray ctrl, int qDim, int kvDim, int cols) {
        int gi = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        int layer = ctrl.get(LAYER), n = step.get(N_ROWS), rowLen = cols / 32 * 18;
        int j = gi - qDim; // the k/v row of the groups from qDim on
        int no = layer * cols;
        float eps = cfgF.get(EPS);
        float[] red = kc.allocateFloatLocalArray(MAX_LOCAL);
        for (int t = 0; t < n; t++) {
            float ss = 0f;
            for (int c = lid; c < cols; c += wg) { float xv = x.get(t * cols + c); ss += xv * xv; }
            red[lid] = ss;
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            kc.localBarrier();
            float inv = 1f / TornadoMath.sqrt(red[0] / cols + eps);
            kc.localBarrier();
            if (gi < qDim) red[lid] = partialQ4N(wq, lut, (layer * qDim + gi) * rowLen, x, t * cols, nw, no, inv, cols, lid, wg);
            else red[lid] = partialQ4N(wk, lut, (layer * kvDim + j) * rowLen, x, t * cols, nw, no, inv, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if ((lid == 0 ? 1 : 0) * (gi < qDim ? 1 : 0) == 1) q.set(t * qDim + gi, red[0]);
            if ((lid == 0 ? 1 : 0) * (gi >= qDim ? 1 : 0) == 1) k.set(t * kvDim + j, red[0]);
            kc.localBarrier();
            red[lid] = 0f;
            if (gi >= qDim) red[lid] = partialQ4N(wv, lut, (layer * kvDim + j) * rowLen, x, t * cols, nw, no, inv, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if ((lid == 0 ? 1 : 0) * (gi >= qDim ? 1 : 0) == 1) v.set(t * kvDim + j, red[0]);
            kc.localBarrier();
        }
    }

    /** FFN RMSNorm, then gate and up (f32 weights) and SwiGLU: hb[t][r] = silu(gate[r] . xn[t]) * (up[r] . xn[t]); thread 0 sets ctrl[LAYER_NEXT] for the down projection. */
    public static void gateUpNormF32(KernelContext kc, FloatArray gate, FloatArray up, FloatArray x, FloatArray nw, FloatArray cfgF, FloatArray hb,
                                    IntArray step, IntArray ctrl, int ffn, int cols) {
        int r = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        int layer = ctrl.get(LAYER);
        if ((r == 0 ? 1 : 0) * (lid == 0 ? 1 : 0) == 1) ctrl.set(LAYER_NEXT, layer + 1);
        int n = step.get(N_ROWS);
        int no = layer * cols;
        float eps = cfgF.get(EPS);
        float[] red = kc.allocateFloatLocalArray(MAX_LOCAL);
        int base = (layer * ffn + r) * (cols);
        for (int t = 0; t < n; t++) {
            float ss = 0f;
            for (int c = lid; c < cols; c += wg) { float xv = x.get(t * cols + c); ss += xv * xv; }
            red[lid] = ss;
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            kc.localBarrier();
            float inv = 1f / TornadoMath.sqrt(red[0] / cols + eps);
            kc.localBarrier();
            red[lid] = partialF32N(gate, base, x, t * cols, nw, no, inv, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            kc.localBarrier();
            float g = red[0];
            kc.localBarrier();
            red[lid] = partialF32N(up, base, x, t * cols, nw, no, inv, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if (lid == 0) hb.set(t * ffn + r, g / (1f + TornadoMath.exp(-g)) * red[0]);
            kc.localBarrier();
        }
    }

    /** FFN RMSNorm, then gate and up (f16 (bf16 when bf16 is 1) weights) and SwiGLU: hb[t][r] = silu(gate[r] . xn[t]) * (up[r] . xn[t]); thread 0 sets ctrl[LAYER_NEXT] for the down projection. */
    public static void gateUpNormF16(KernelContext kc, ShortArray gate, ShortArray up, FloatArray lut, FloatArray x, FloatArray nw, FloatArray cfgF, FloatArray hb,
                                    IntArray step, IntArray ctrl, int ffn, int cols, int bf16) {
        int r = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        int layer = ctrl.get(LAYER);
        if ((r == 0 ? 1 : 0) * (lid == 0 ? 1 : 0) == 1) ctrl.set(LAYER_NEXT, layer + 1);
        int n = step.get(N_ROWS);
        int no = layer * cols;
        float eps = cfgF.get(EPS);
        int lo = bf16 * LUT_BF16;
        float[] red = kc.allocateFloatLocalArray(MAX_LOCAL);
        int base = (layer * ffn + r) * (cols);
        for (int t = 0; t < n; t++) {
            float ss = 0f;
            for (int c = lid; c < cols; c += wg) { float xv = x.get(t * cols + c); ss += xv * xv; }
            red[lid] = ss;
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            kc.localBarrier();
            float inv = 1f / TornadoMath.sqrt(red[0] / cols + eps);
            kc.localBarrier();
            red[lid] = partialF16N(gate, lut, lo, base, x, t * cols, nw, no, inv, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            kc.localBarrier();
            float g = red[0];
            kc.localBarrier();
            red[lid] = partialF16N(up, lut, lo, base, x, t * cols, nw, no, inv, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if (lid == 0) hb.set(t * ffn + r, g / (1f + TornadoMath.exp(-g)) * red[0]);
            kc.localBarrier();
        }
    }

    /** FFN RMSNorm, then gate and up (Q8_0 weights) and SwiGLU: hb[t][r] = silu(gate[r] . xn[t]) * (up[r] . xn[t]); thread 0 sets ctrl[LAYER_NEXT] for the down projection. */
    public static void gateUpNormQ8(KernelContext kc, ByteArray gate, ByteArray up, FloatArray lut, FloatArray x, FloatArray nw, FloatArray cfgF, FloatArray hb,
                                    IntArray step, IntArray ctrl, int ffn, int cols) {
        int r = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        int layer = ctrl.get(LAYER);
        if ((r == 0 ? 1 : 0) * (lid == 0 ? 1 : 0) == 1) ctrl.set(LAYER_NEXT, layer + 1);
        int n = step.get(N_ROWS);
        int no = layer * cols;
        float eps = cfgF.get(EPS);
        float[] red = kc.allocateFloatLocalArray(MAX_LOCAL);
        int base = (layer * ffn + r) * (cols / 32 * 34);
        for (int t = 0; t < n; t++) {
            float ss = 0f;
            for (int c = lid; c < cols; c += wg) { float xv = x.get(t * cols + c); ss += xv * xv; }
            red[lid] = ss;
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            kc.localBarrier();
            float inv = 1f / TornadoMath.sqrt(red[0] / cols + eps);
            kc.localBarrier();
            red[lid] = partialQ8N(gate, lut, base, x, t * cols, nw, no, inv, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            kc.localBarrier();
            float g = red[0];
            kc.localBarrier();
            red[lid] = partialQ8N(up, lut, base, x, t * cols, nw, no, inv, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if (lid == 0) hb.set(t * ffn + r, g / (1f + TornadoMath.exp(-g)) * red[0]);
            kc.localBarrier();
        }
    }

    /** FFN RMSNorm, then gate and up (Q4_0 weights) and SwiGLU: hb[t][r] = silu(gate[r] . xn[t]) * (up[r] . xn[t]); thread 0 sets ctrl[LAYER_NEXT] for the down projection. */
    public static void gateUpNormQ4(KernelContext kc, ByteArray gate, ByteArray up, FloatArray lut, FloatArray x, FloatArray nw, FloatArray cfgF, FloatArray hb,
                                    IntArray step, IntArray ctrl, int ffn, int cols) {
        int r = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        int layer = ctrl.get(LAYER);
        if ((r == 0 ? 1 : 0) * (lid == 0 ? 1 : 0) == 1) ctrl.set(LAYER_NEXT, layer + 1);
        int n = step.get(N_ROWS);
        int no = layer * cols;
        float eps = cfgF.get(EPS);
        float[] red = kc.allocateFloatLocalArray(MAX_LOCAL);
        int base = (layer * ffn + r) * (cols / 32 * 18);
        for (int t = 0; t < n; t++) {
            float ss = 0f;
            for (int c = lid; c < cols; c += wg) { float xv = x.get(t * cols + c); ss += xv * xv; }
            red[lid] = ss;
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            kc.localBarrier();
            float inv = 1f / TornadoMath.sqrt(red[0] / cols + eps);
            kc.localBarrier();
            red[lid] = partialQ4N(gate, lut, base, x, t * cols, nw, no, inv, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            kc.localBarrier();
            float g = red[0];
            kc.localBarrier();
            red[lid] = partialQ4N(up, lut, base, x, t * cols, nw, no, inv, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if (lid == 0) hb.set(t * ffn + r, g / (1f + TornadoMath.exp(-g)) * red[0]);
            kc.localBarrier();
        }
    }

    /** The attention output projection (f32 weights) added to the residual stream x; its threads also run the end-of-step reclaim (DmsStep.endStep), which so needs no launch of its own. */
    public static void outProjF32(KernelContext kc, FloatArray w, FloatArray att, FloatArray x, IntArray step, IntArray cfg, IntArray ctrl,
                                 IntArray headState, IntArray slotMeta, IntArray ring, FloatArray kF, FloatArray vF, ByteArray kB, ByteArray vB,
                                 FloatArray kS, FloatArray vS) {
        int r = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        int n = step.get(N_ROWS), dim = cfg.get(DIM), cols = cfg.get(Q_DIM), layer = ctrl.get(LAYER);
        // the end-of-step reclaim, item (row, KV head): frees what the sequence's last query of the step could not
        // see, so the cache shrinks right after a prefill and holds exactly that query's view (the CR the golden files
        // define), as the JVM cache does; mirrors cache's DmsStep.endStep. A sequence with one row in the step (decode)
        // has nothing to free: its append reclaimed at the same position.
        int kvHeads = cfg.get(KV_HEADS), R = cfg.get(MAX_ROWS), seqOff = Layout.seqOff(R);
        for (int i = r * wg + lid; i < n * kvHeads; i += dim * wg) {
            int t = i / kvHeads, g = i - t * kvHeads;
            int seq = step.get(seqOff + t);
            // neighbours' sequences read at clamped indices (no value merged from branches)
            int lastOfSeq = (t + 1 >= n ? 1 : 0) | (step.get(seqOff + TornadoMath.min(t + 1, n - 1)) != seq ? 1 : 0);
            int firstOfSeq = (t == 0 ? 1 : 0) | (step.get(seqOff + TornadoMath.max(t - 1, 0)) != seq ? 1 : 0);
            int pb = Layout.paramOff(R) + seq * SLOT_PARAMS;
            if (lastOfSeq * (1 - firstOfSeq) * step.get(pb + P_DMS) == 1) {
                reclaimHead(headState, slotMeta, ring, kF, vF, kB, vB, kS, vS, cfg, (seq * cfg.get(LAYERS) + layer) * kvHeads + g,
                        step.get(Layout.posOff(R) + t), step.get(pb + P_WINDOW));
            }
        }
        float[] red = kc.allocateFloatLocalArray(MAX_LOCAL);
        int base = (layer * dim + r) * (cols);
        for (int t = 0; t < n; t++) {
            red[lid] = partialF32(w, base, att, t * cols, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if (lid == 0) x.set(t * dim + r, x.get(t * dim + r) + red[0]);
            kc.localBarrier();
        }
    }

    /** The attention output projection (f16 (bf16 when bf16 is 1) weights) added to the residual stream x; its threads also run the end-of-step reclaim (DmsStep.endStep), which so needs no launch of its own. */
    public static void outProjF16(KernelContext kc, ShortArray w, FloatArray lut, FloatArray att, FloatArray x, IntArray step, IntArray cfg, IntArray ctrl,
                                 IntArray headState, IntArray slotMeta, IntArray ring, FloatArray kF, FloatArray vF, ByteArray kB, ByteArray vB,
                                 FloatArray kS, FloatArray vS, int bf16) {
        int r = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        int n = step.get(N_ROWS), dim = cfg.get(DIM), cols = cfg.get(Q_DIM), layer = ctrl.get(LAYER);
        // the end-of-step reclaim, item (row, KV head): frees what the sequence's last query of the step could not
        // see, so the cache shrinks right after a prefill and holds exactly that query's view (the CR the golden files
        // define), as the JVM cache does; mirrors cache's DmsStep.endStep. A sequence with one row in the step (decode)
        // has nothing to free: its append reclaimed at the same position.
        int kvHeads = cfg.get(KV_HEADS), R = cfg.get(MAX_ROWS), seqOff = Layout.seqOff(R);
        for (int i = r * wg + lid; i < n * kvHeads; i += dim * wg) {
            int t = i / kvHeads, g = i - t * kvHeads;
            int seq = step.get(seqOff + t);
            // neighbours' sequences read at clamped indices (no value merged from branches)
            int lastOfSeq = (t + 1 >= n ? 1 : 0) | (step.get(seqOff + TornadoMath.min(t + 1, n - 1)) != seq ? 1 : 0);
            int firstOfSeq = (t == 0 ? 1 : 0) | (step.get(seqOff + TornadoMath.max(t - 1, 0)) != seq ? 1 : 0);
            int pb = Layout.paramOff(R) + seq * SLOT_PARAMS;
            if (lastOfSeq * (1 - firstOfSeq) * step.get(pb + P_DMS) == 1) {
                reclaimHead(headState, slotMeta, ring, kF, vF, kB, vB, kS, vS, cfg, (seq * cfg.get(LAYERS) + layer) * kvHeads + g,
                        step.get(Layout.posOff(R) + t), step.get(pb + P_WINDOW));
            }
        }
        int lo = bf16 * LUT_BF16;
        float[] red = kc.allocateFloatLocalArray(MAX_LOCAL);
        int base = (layer * dim + r) * (cols);
        for (int t = 0; t < n; t++) {
            red[lid] = partialF16(w, lut, lo, base, att, t * cols, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if (lid == 0) x.set(t * dim + r, x.get(t * dim + r) + red[0]);
            kc.localBarrier();
        }
    }

    /** The attention output projection (Q8_0 weights) added to the residual stream x; its threads also run the end-of-step reclaim (DmsStep.endStep), which so needs no launch of its own. */
    public static void outProjQ8(KernelContext kc, ByteArray w, FloatArray lut, FloatArray att, FloatArray x, IntArray step, IntArray cfg, IntArray ctrl,
                                 IntArray headState, IntArray slotMeta, IntArray ring, FloatArray kF, FloatArray vF, ByteArray kB, ByteArray vB,
                                 FloatArray kS, FloatArray vS) {
        int r = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        int n = step.get(N_ROWS), dim = cfg.get(DIM), cols = cfg.get(Q_DIM), layer = ctrl.get(LAYER);
        // the end-of-step reclaim, item (row, KV head): frees what the sequence's last query of the step could not
        // see, so the cache shrinks right after a prefill and holds exactly that query's view (the CR the golden files
        // define), as the JVM cache does; mirrors cache's DmsStep.endStep. A sequence with one row in the step (decode)
        // has nothing to free: its append reclaimed at the same position.
        int kvHeads = cfg.get(KV_HEADS), R = cfg.get(MAX_ROWS), seqOff = Layout.seqOff(R);
        for (int i = r * wg + lid; i < n * kvHeads; i += dim * wg) {
            int t = i / kvHeads, g = i - t * kvHeads;
            int seq = step.get(seqOff + t);
            // neighbours' sequences read at clamped indices (no value merged from branches)
            int lastOfSeq = (t + 1 >= n ? 1 : 0) | (step.get(seqOff + TornadoMath.min(t + 1, n - 1)) != seq ? 1 : 0);
            int firstOfSeq = (t == 0 ? 1 : 0) | (step.get(seqOff + TornadoMath.max(t - 1, 0)) != seq ? 1 : 0);
            int pb = Layout.paramOff(R) + seq * SLOT_PARAMS;
            if (lastOfSeq * (1 - firstOfSeq) * step.get(pb + P_DMS) == 1) {
                reclaimHead(headState, slotMeta, ring, kF, vF, kB, vB, kS, vS, cfg, (seq * cfg.get(LAYERS) + layer) * kvHeads + g,
                        step.get(Layout.posOff(R) + t), step.get(pb + P_WINDOW));
            }
        }
        float[] red = kc.allocateFloatLocalArray(MAX_LOCAL);
        int base = (layer * dim + r) * (cols / 32 * 34);
        for (int t = 0; t < n; t++) {
            red[lid] = partialQ8(w, lut, base, att, t * cols, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if (lid == 0) x.set(t * dim + r, x.get(t * dim + r) + red[0]);
            kc.localBarrier();
        }
    }

    /** The attention output projection (Q4_0 weights) added to the residual stream x; its threads also run the end-of-step reclaim (DmsStep.endStep), which so needs no launch of its own. */
    public static void outProjQ4(KernelContext kc, ByteArray w, FloatArray lut, FloatArray att, FloatArray x, IntArray step, IntArray cfg, IntArray ctrl,
                                 IntArray headState, IntArray slotMeta, IntArray ring, FloatArray kF, FloatArray vF, ByteArray kB, ByteArray vB,
                                 FloatArray kS, FloatArray vS) {
        int r = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        int n = step.get(N_ROWS), dim = cfg.get(DIM), cols = cfg.get(Q_DIM), layer = ctrl.get(LAYER);
        // the end-of-step reclaim, item (row, KV head): frees what the sequence's last query of the step could not
        // see, so the cache shrinks right after a prefill and holds exactly that query's view (the CR the golden files
        // define), as the JVM cache does; mirrors cache's DmsStep.endStep. A sequence with one row in the step (decode)
        // has nothing to free: its append reclaimed at the same position.
        int kvHeads = cfg.get(KV_HEADS), R = cfg.get(MAX_ROWS), seqOff = Layout.seqOff(R);
        for (int i = r * wg + lid; i < n * kvHeads; i += dim * wg) {
            int t = i / kvHeads, g = i - t * kvHeads;
            int seq = step.get(seqOff + t);
            // neighbours' sequences read at clamped indices (no value merged from branches)
            int lastOfSeq = (t + 1 >= n ? 1 : 0) | (step.get(seqOff + TornadoMath.min(t + 1, n - 1)) != seq ? 1 : 0);
            int firstOfSeq = (t == 0 ? 1 : 0) | (step.get(seqOff + TornadoMath.max(t - 1, 0)) != seq ? 1 : 0);
            int pb = Layout.paramOff(R) + seq * SLOT_PARAMS;
            if (lastOfSeq * (1 - firstOfSeq) * step.get(pb + P_DMS) == 1) {
                reclaimHead(headState, slotMeta, ring, kF, vF, kB, vB, kS, vS, cfg, (seq * cfg.get(LAYERS) + layer) * kvHeads + g,
                        step.get(Layout.posOff(R) + t), step.get(pb + P_WINDOW));
            }
        }
        float[] red = kc.allocateFloatLocalArray(MAX_LOCAL);
        int base = (layer * dim + r) * (cols / 32 * 18);
        for (int t = 0; t < n; t++) {
            red[lid] = partialQ4(w, lut, base, att, t * cols, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if (lid == 0) x.set(t * dim + r, x.get(t * dim + r) + red[0]);
            kc.localBarrier();
        }
    }

    /** The final RMSNorm and the logits (f32 weights) of the rows the step asks for (the last row, or all). */
    public static void logitsF32(KernelContext kc, FloatArray w, FloatArray x, FloatArray nw, FloatArray cfgF, FloatArray out, IntArray step,
                                int rowsOut, int cols) {
        int r = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        int n = step.get(N_ROWS), mode = step.get(LOGITS_MODE);
        if (mode == LOGITS_NONE) return;
        int first = (mode == LOGITS_LAST ? 1 : 0) * (n - 1);
        int no = 0;
        float eps = cfgF.get(EPS);
        float[] red = kc.allocateFloatLocalArray(MAX_LOCAL);
        int base = r * (cols);
        for (int t = first; t < n; t++) {
            float ss = 0f;
            for (int c = lid; c < cols; c += wg) { float xv = x.get(t * cols + c); ss += xv * xv; }
            red[lid] = ss;
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            kc.localBarrier();
            float inv = 1f / TornadoMath.sqrt(red[0] / cols + eps);
            kc.localBarrier();
            red[lid] = partialF32N(w, base, x, t * cols, nw, no, inv, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if (lid == 0) out.set(t * rowsOut + r, red[0]);
            kc.localBarrier();
        }
    }

    /** The final RMSNorm and the logits (f16 (bf16 when bf16 is 1) weights) of the rows the step asks for (the last row, or all). */
    public static void logitsF16(KernelContext kc, ShortArray w, FloatArray lut, FloatArray x, FloatArray nw, FloatArray cfgF, FloatArray out, IntArray step,
                                int rowsOut, int cols, int bf16) {
        int r = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        int n = step.get(N_ROWS), mode = step.get(LOGITS_MODE);
        if (mode == LOGITS_NONE) return;
        int first = (mode == LOGITS_LAST ? 1 : 0) * (n - 1);
        int no = 0;
        float eps = cfgF.get(EPS);
        int lo = bf16 * LUT_BF16;
        float[] red = kc.allocateFloatLocalArray(MAX_LOCAL);
        int base = r * (cols);
        for (int t = first; t < n; t++) {
            float ss = 0f;
            for (int c = lid; c < cols; c += wg) { float xv = x.get(t * cols + c); ss += xv * xv; }
            red[lid] = ss;
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            kc.localBarrier();
            float inv = 1f / TornadoMath.sqrt(red[0] / cols + eps);
            kc.localBarrier();
            red[lid] = partialF16N(w, lut, lo, base, x, t * cols, nw, no, inv, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if (lid == 0) out.set(t * rowsOut + r, red[0]);
            kc.localBarrier();
        }
    }

    /** The final RMSNorm and the logits (Q8_0 weights) of the rows the step asks for (the last row, or all). */
    public static void logitsQ8(KernelContext kc, ByteArray w, FloatArray lut, FloatArray x, FloatArray nw, FloatArray cfgF, FloatArray out, IntArray step,
                                int rowsOut, int cols) {
        int r = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        int n = step.get(N_ROWS), mode = step.get(LOGITS_MODE);
        if (mode == LOGITS_NONE) return;
        int first = (mode == LOGITS_LAST ? 1 : 0) * (n - 1);
        int no = 0;
        float eps = cfgF.get(EPS);
        float[] red = kc.allocateFloatLocalArray(MAX_LOCAL);
        int base = r * (cols / 32 * 34);
        for (int t = first; t < n; t++) {
            float ss = 0f;
            for (int c = lid; c < cols; c += wg) { float xv = x.get(t * cols + c); ss += xv * xv; }
            red[lid] = ss;
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            kc.localBarrier();
            float inv = 1f / TornadoMath.sqrt(red[0] / cols + eps);
            kc.localBarrier();
            red[lid] = partialQ8N(w, lut, base, x, t * cols, nw, no, inv, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if (lid == 0) out.set(t * rowsOut + r, red[0]);
            kc.localBarrier();
        }
    }

    /** The final RMSNorm and the logits (Q4_0 weights) of the rows the step asks for (the last row, or all). */
    public static void logitsQ4(KernelContext kc, ByteArray w, FloatArray lut, FloatArray x, FloatArray nw, FloatArray cfgF, FloatArray out, IntArray step,
                                int rowsOut, int cols) {
        int r = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        int n = step.get(N_ROWS), mode = step.get(LOGITS_MODE);
        if (mode == LOGITS_NONE) return;
        int first = (mode == LOGITS_LAST ? 1 : 0) * (n - 1);
        int no = 0;
        float eps = cfgF.get(EPS);
        float[] red = kc.allocateFloatLocalArray(MAX_LOCAL);
        int base = r * (cols / 32 * 18);
        for (int t = first; t < n; t++) {
            float ss = 0f;
            for (int c = lid; c < cols; c += wg) { float xv = x.get(t * cols + c); ss += xv * xv; }
            red[lid] = ss;
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            kc.localBarrier();
            float inv = 1f / TornadoMath.sqrt(red[0] / cols + eps);
            kc.localBarrier();
            red[lid] = partialQ4N(w, lut, base, x, t * cols, nw, no, inv, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if (lid == 0) out.set(t * rowsOut + r, red[0]);
            kc.localBarrier();
        }
    }

    /** This thread's share of one weight row times the normed input: sum of w[k] * (nw[no + k] * (x[xo + k] * inv)). */
    static float partialF32N(FloatArray w, int base, FloatArray x, int xo, FloatArray nw, int no, float inv, int cols, int lid, int wg) {
        float sum = 0f;
        for (int k = lid; k < cols; k += wg) sum += w.get(base + k) * (nw.get(no + k) * (x.get(xo + k) * inv));
        return sum;
    }

    static float partialF16N(ShortArray w, FloatArray lut, int lo, int base, FloatArray x, int xo, FloatArray nw, int no, float inv, int cols, int lid, int wg) {
        float sum = 0f;
        for (int k = lid; k < cols; k += wg) sum += lut.get(lo + (w.get(base + k) & 0xFFFF)) * (nw.get(no + k) * (x.get(xo + k) * inv));
        return sum;
    }

    /**
     * Quantised rows (Q8_0: 34-byte blocks; Q4_0: 18): each thread takes 4 consecutive weight bytes per step (Q8_0:
     * 4 elements; Q4_0: their 8 nibbles) and the work-group's threads take consecutive runs, so neighbouring threads
     * read neighbouring bytes (coalesced on a GPU; a thread per block read 32 scattered bytes per load). The threads
     * that share a block each read its scale.
     */
    static float partialQ8N(ByteArray w, FloatArray lut, int base, FloatArray x, int xo, FloatArray nw, int no, float inv, int cols, int lid, int wg) {
        float sum = 0f;
        for (int e = 4 * lid; e < cols; e += 4 * wg) {
            int o = base + (e >> 5) * 34, q = o + 2 + (e & 31);
            float d = lut.get((w.get(o) & 0xFF) | ((w.get(o + 1) & 0xFF) << 8));
            sum += d * (w.get(q) * (nw.get(no + e) * (x.get(xo + e) * inv)) + w.get(q + 1) * (nw.get(no + e + 1) * (x.get(xo + e + 1) * inv))
                    + w.get(q + 2) * (nw.get(no + e + 2) * (x.get(xo + e + 2) * inv)) + w.get(q + 3) * (nw.get(no + e + 3) * (x.get(xo + e + 3) * inv)));
        }
        return sum;
    }

    static float partialQ4N(ByteArray w, FloatArray lut, int base, FloatArray x, int xo, FloatArray nw, int no, float inv, int cols, int lid, int wg) {
        float sum = 0f;
        for (int u = lid; u < cols / 8; u += wg) {
            int o = base + (u >> 2) * 18, q = o + 2 + (u & 3) * 4, e = (u >> 2) * 32 + (u & 3) * 4;
            float d = lut.get((w.get(o) & 0xFF) | ((w.get(o + 1) & 0xFF) << 8));
            float s = 0f;
            for (int i = 0; i < 4; i++) {
                int b = w.get(q + i);
                s += ((b & 15) - 8) * (nw.get(no + e + i) * (x.get(xo + e + i) * inv))
                        + (((b >> 4) & 15) - 8) * (nw.get(no + e + i + 16) * (x.get(xo + e + i + 16) * inv));
            }
            sum += d * s;
        }
        return sum;
    }

    /** This thread's share of one weight row (starting at {@code base}) times x[xo..xo+cols), as in the matmuls. */
    static float partialF32(FloatArray w, int base, FloatArray in, int xo, int cols, int lid, int wg) {
        float sum = 0f;
        for (int k = lid; k < cols; k += wg) sum += w.get(base + k) * in.get(xo + k);
        return sum;
    }

    static float partialF16(ShortArray w, FloatArray lut, int lo, int base, FloatArray in, int xo, int cols, int lid, int wg) {
        float sum = 0f;
        for (int k = lid; k < cols; k += wg) sum += lut.get(lo + (w.get(base + k) & 0xFFFF)) * in.get(xo + k);
        return sum;
    }

    static float partialQ8(ByteArray w, FloatArray lut, int base, FloatArray in, int xo, int cols, int lid, int wg) {
        float sum = 0f;
        for (int e = 4 * lid; e < cols; e += 4 * wg) {
            int o = base + (e >> 5) * 34, q = o + 2 + (e & 31);
            float d = lut.get((w.get(o) & 0xFF) | ((w.get(o + 1) & 0xFF) << 8));
            sum += d * (w.get(q) * in.get(xo + e) + w.get(q + 1) * in.get(xo + e + 1) + w.get(q + 2) * in.get(xo + e + 2) + w.get(q + 3) * in.get(xo + e + 3));
        }
        return sum;
    }

    static float partialQ4(ByteArray w, FloatArray lut, int base, FloatArray in, int xo, int cols, int lid, int wg) {
        float sum = 0f;
        for (int u = lid; u < cols / 8; u += wg) {
            int o = base + (u >> 2) * 18, q = o + 2 + (u & 3) * 4, e = xo + (u >> 2) * 32 + (u & 3) * 4;
            float d = lut.get((w.get(o) & 0xFF) | ((w.get(o + 1) & 0xFF) << 8));
            float s = 0f;
            for (int i = 0; i < 4; i++) {
                int b = w.get(q + i);
                s += ((b & 15) - 8) * in.get(e + i) + (((b >> 4) & 15) - 8) * in.get(e + i + 16);
            }
            sum += d * s;
        }
        return sum;
    }

    /**
     * Greedy pick of each logits row (one work-group per row): the largest logit, lowest index on ties, written into
     * the status array at {@link Layout#PICKED} + row, so the step's one read brings the picks with the status words.
     */
    public static void argmax(KernelContext kc, FloatArray logits, IntArray step, IntArray cfg, IntArray status) {
        int t = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        int n = step.get(N_ROWS), mode = step.get(LOGITS_MODE), vocab = cfg.get(VOCAB);
        if (mode == LOGITS_NONE) return;
        int first = mode == LOGITS_LAST ? n - 1 : 0;
        if (t < first || t >= n) return;
        float[] best = kc.allocateFloatLocalArray(MAX_LOCAL);
        int[] at = kc.allocateIntLocalArray(MAX_LOCAL);
        float bv = Float.NEGATIVE_INFINITY;
        int bi = 2147483647;
        for (int j = lid; j < vocab; j += wg) {
            float x = logits.get(t * vocab + j);
            if (x != x) status.set(STATUS_NAN, 1);
            if (x > bv) { bv = x; bi = j; }
        }
        best[lid] = bv;
        at[lid] = bi;
        for (int s = wg / 2; s > 0; s /= 2) {
            kc.localBarrier();
            if (lid < s) {
                float o = best[lid + s];
                int oi = at[lid + s];
                if (o > best[lid] || (o == best[lid] && oi < at[lid])) { best[lid] = o; at[lid] = oi; }
            }
        }
        if (lid == 0) status.set(PICKED + t, at[0]);
    }
}
