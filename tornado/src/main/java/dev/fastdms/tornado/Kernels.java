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
     * Step start (one work-group): rewinds the layer counter, clears the status, and checks the step's input on the
     * device — row count, token ids, DMS parameters, and that the decode tables arrived (f16 0x3C00 is 1.0) — so a bad
     * upload stops the step with a status code instead of reading out of bounds.
     */
    public static void begin(KernelContext kc, IntArray step, FloatArray stepF, IntArray cfg, FloatArray cfgF, FloatArray lut, IntArray ctrl, IntArray status) {
        if (kc.globalIdx != 0) return;
        ctrl.set(LAYER, 0);
        status.set(STATUS_FULL, 0);
        status.set(STATUS_FULL_HEAD, 0);
        status.set(STATUS_NAN, 0);
        int n = step.get(N_ROWS), R = cfg.get(MAX_ROWS), vocab = cfg.get(VOCAB), seqs = cfg.get(MAX_SEQS);
        int bad = (n < 1 ? 1 : 0) | (n > R ? 1 : 0);
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

    /** Token embeddings of the step's rows (f32 table). */
    public static void embedF32(KernelContext kc, FloatArray table, FloatArray x, IntArray step, IntArray cfg) {
        int i = kc.globalIdx, dim = cfg.get(DIM), n = step.get(N_ROWS);
        if (i < n * dim) {
            int t = i / dim, k = i - t * dim;
            x.set(i, table.get(step.get(TOKENS + t) * dim + k));
        }
    }

    /** Token embeddings from an f16 (bf16 when {@code bf16} is 1) table. */
    public static void embedF16(KernelContext kc, ShortArray table, FloatArray lut, FloatArray x, IntArray step, IntArray cfg, int bf16) {
        int i = kc.globalIdx, dim = cfg.get(DIM), n = step.get(N_ROWS);
        if (i < n * dim) {
            int t = i / dim, k = i - t * dim;
            int bits = table.get(step.get(TOKENS + t) * dim + k) & 0xFFFF;
            x.set(i, lut.get(bf16 * LUT_BF16 + bits));
        }
    }

    /** Token embeddings from a Q8_0 table (blocks of 32: f16 scale, 32 int8). */
    public static void embedQ8(KernelContext kc, ByteArray table, FloatArray lut, FloatArray x, IntArray step, IntArray cfg) {
        int i = kc.globalIdx, dim = cfg.get(DIM), n = step.get(N_ROWS);
        if (i < n * dim) {
            int t = i / dim, k = i - t * dim;
            int e = step.get(TOKENS + t) * dim + k;
            int o = (e / 32) * 34;
            float d = lut.get((table.get(o) & 0xFF) | ((table.get(o + 1) & 0xFF) << 8));
            x.set(i, d * table.get(o + 2 + e % 32));
        }
    }

    /** Token embeddings from a Q4_0 table (blocks of 32: f16 scale, 16 bytes of nibbles, low nibbles first). */
    public static void embedQ4(KernelContext kc, ByteArray table, FloatArray lut, FloatArray x, IntArray step, IntArray cfg) {
        int i = kc.globalIdx, dim = cfg.get(DIM), n = step.get(N_ROWS);
        if (i < n * dim) {
            int t = i / dim, k = i - t * dim;
            int e = step.get(TOKENS + t) * dim + k;
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
            float sum = 0f;
            for (int b = lid; b < blocks; b += wg) {
                int o = base + b * 34;
                float d = lut.get((w.get(o) & 0xFF) | ((w.get(o + 1) & 0xFF) << 8));
                int xo = t * cols + b * 32;
                float s = 0f;
                for (int j = 0; j < 32; j++) s += w.get(o + 2 + j) * in.get(xo + j);
                sum += d * s;
            }
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
            float sum = 0f;
            for (int b = lid; b < blocks; b += wg) {
                int o = base + b * 18;
                float d = lut.get((w.get(o) & 0xFF) | ((w.get(o + 1) & 0xFF) << 8));
                int xo = t * cols + b * 32;
                float s = 0f;
                for (int j = 0; j < 16; j++) {
                    // nibbles from the signed byte: "& 0xFF" makes TornadoVM type the value unsigned, and "- 8" then wraps
                    int q = w.get(o + 2 + j);
                    s += ((q & 15) - 8) * in.get(xo + j) + (((q >> 4) & 15) - 8) * in.get(xo + j + 16);
                }
                sum += d * s;
            }
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

    // ---------------------------------------------------------------- DMS decision and RoPE

    /**
     * One thread per (row, head) over the query heads then the KV heads. For the first query head of each KV group of
     * a DMS sequence: the decision from its last channel before RoPE ({@code scale * q[d-1] - offset > 0}, or the
     * benchmark's forced hash), recorded in {@code flags[row][kvHead]}; that channel is zeroed before and after RoPE.
     * Then RoPE at the row's position (adjacent pairs, or halves for Hugging Face weights).
     * Mirrors cache's DmsStep.decidedPosition and DmsStep.forcedEviction, and DmsConfig.evicts.
     */
    public static void dmsRope(KernelContext kc, FloatArray q, FloatArray k, FloatArray invFreq, IntArray step, FloatArray stepF,
                               IntArray cfg, IntArray ctrl, IntArray flags, ByteArray log) {
        int i = kc.globalIdx;
        int heads = cfg.get(HEADS), kvHeads = cfg.get(KV_HEADS), hd = cfg.get(HEAD_DIM), R = cfg.get(MAX_ROWS);
        int per = heads + kvHeads;
        int t = i / per, h = i - t * per;
        if (t >= step.get(N_ROWS)) return;
        int seq = step.get(Layout.seqOff(R) + t), pos = step.get(Layout.posOff(R) + t);
        int pb = Layout.paramOff(R) + seq * SLOT_PARAMS;
        int dmsOn = step.get(pb + P_DMS);
        int group = cfg.get(GROUP), layer = ctrl.get(LAYER);
        boolean isQ = h < heads;
        int base = isQ ? (t * heads + h) * hd : (t * kvHeads + (h - heads)) * hd;
        boolean borrowed = isQ & (dmsOn == 1) & (h % group == 0);
        if (borrowed) {
            int g = h / group;
            int decided = step.get(pb + P_NVIDIA) == 1 ? pos - 1 : pos;
            int evict;
            if (step.get(pb + P_FORCED) == 1) {
                long hash = (decided * 0x9E3779B97F4A7C15L) ^ ((long) layer << 40) ^ ((long) g << 20);
                // the JVM's hash with its unsigned shifts written as masked signed shifts: TornadoVM 5.2.1 emits a
                // long ">>>" as OpenCL's arithmetic ">>"
                hash ^= (hash >> 31) & 0x1FFFFFFFFL;
                hash *= 0xBF58476D1CE4E5B9L;
                hash ^= (hash >> 29) & 0x7FFFFFFFFL;
                long thr = ((long) step.get(pb + P_THR_HI) << 32) | (step.get(pb + P_THR_LO) & 0xFFFFFFFFL);
                evict = ((hash >> 11) & 0x1FFFFFFFFFFFFFL) < thr ? 1 : 0;
            } else {
                float z = stepF.get(seq * SLOT_FPARAMS + F_SCALE) * q.get(base + hd - 1) - stepF.get(seq * SLOT_FPARAMS + F_OFFSET);
                evict = z > 0f ? 1 : 0;
            }
            flags.set(t * kvHeads + g, evict);
            if (cfg.get(LOG_ON) == 1 && decided >= 0) {
                int L = cfg.get(LAYERS), ctx = cfg.get(LOG_CTX);
                log.set(((seq * L + layer) * kvHeads + g) * ctx + decided, (byte) (evict + 1));
            }
            q.set(base + hd - 1, 0f);
        }
        int half = hd / 2;
        int ropeHalf = cfg.get(ROPE_HALF);
        for (int j = 0; j < half; j++) {
            double angle = pos * (double) invFreq.get(j);
            float cs = (float) TornadoMath.cos(angle), sn = (float) TornadoMath.sin(angle);
            int ia = ropeHalf == 1 ? base + j : base + 2 * j;
            int ib = ropeHalf == 1 ? base + j + half : base + 2 * j + 1;
            float a = isQ ? q.get(ia) : k.get(ia), b = isQ ? q.get(ib) : k.get(ib);
            float ra = a * cs - b * sn, rb = a * sn + b * cs;
            if (isQ) { q.set(ia, ra); q.set(ib, rb); } else { k.set(ia, ra); k.set(ib, rb); }
        }
        if (borrowed) q.set(base + hd - 1, 0f);
    }

    // ---------------------------------------------------------------- the compacted cache

    /**
     * Appends the step's keys and values to the compacted per-(sequence, layer, KV head) caches, applying DMS: one
     * thread per (sequence, KV head) walks that sequence's rows in order (appends must be ordered per head). For each
     * row: under the NVIDIA convention the row's decision flags the previous token; before the sequence's first row
     * the slots of flagged tokens that no query from here on can see are reclaimed (the last slot moves into the
     * hole, so live slots stay dense); then the row takes slot {@code live}. {@code ring} maps the positions still
     * inside the window to their slots. A full head sets {@code status} (the host stops with an error).
     * Mirrors cache's DmsStep.append (with HeadKv.markEvicted, reclaim and removeSlot on the device's slot arrays).
     */
    public static void kvAppend(KernelContext kc, FloatArray k, FloatArray v, IntArray step, IntArray cfg, IntArray ctrl, IntArray flags,
                                IntArray headState, IntArray slotMeta, IntArray ring, FloatArray kF, FloatArray vF, ByteArray kB,
                                ByteArray vB, FloatArray kS, FloatArray vS, FloatArray lut, IntArray status) {
        int i = kc.globalIdx;
        int kvHeads = cfg.get(KV_HEADS), R = cfg.get(MAX_ROWS);
        int t = i / kvHeads, g = i - t * kvHeads;
        int n = step.get(N_ROWS);
        if (t >= n) return;
        int seqOff = Layout.seqOff(R);
        int seq = step.get(seqOff + t);
        if (t > 0 && step.get(seqOff + t - 1) == seq) return; // not the sequence's first row
        int L = cfg.get(LAYERS), hd = cfg.get(HEAD_DIM), cap = cfg.get(SLOTS), ringN = cfg.get(RING);
        int kvType = cfg.get(KV_TYPE), blocks = cfg.get(KV_BLOCKS), kvDim = cfg.get(KV_DIM);
        int head = (seq * L + ctrl.get(LAYER)) * kvHeads + g;
        int pb = Layout.paramOff(R) + seq * SLOT_PARAMS;
        int dmsOn = step.get(pb + P_DMS), window = step.get(pb + P_WINDOW), nvidia = step.get(pb + P_NVIDIA);
        int live = headState.get(2 * head), pending = headState.get(2 * head + 1);
        int ringBase = head * ringN, slotBase = head * cap;
        for (int j = t; j < n; j++) {
            if (step.get(seqOff + j) != seq) break;
            int pos = step.get(Layout.posOff(R) + j);
            if (pos == 0) { live = 0; pending = 0; } // a new sequence in this slot
            int evict = dmsOn == 1 ? flags.get(j * kvHeads + g) : 0;
            if (evict == 1 && nvidia == 1 && pos > 0) {
                int ps = ring.get(ringBase + (pos - 1) % ringN);
                slotMeta.set(2 * (slotBase + ps) + 1, 1);
            }
            if (j == t && dmsOn == 1) {
                // reclaim(pos): tokens whose window has closed for every query from pos on
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

    /**
     * After attention: frees what the sequence's last query of the step could not see, so the cache shrinks right
     * after a prefill and holds exactly that query's view (the CR the golden files define), as the JVM cache does.
     * Mirrors cache's DmsStep.endStep.
     */
    public static void kvReclaim(KernelContext kc, IntArray step, IntArray cfg, IntArray ctrl, IntArray headState, IntArray slotMeta,
                                 IntArray ring, FloatArray kF, FloatArray vF, ByteArray kB, ByteArray vB, FloatArray kS, FloatArray vS) {
        int i = kc.globalIdx;
        int kvHeads = cfg.get(KV_HEADS), R = cfg.get(MAX_ROWS);
        int t = i / kvHeads, g = i - t * kvHeads;
        int n = step.get(N_ROWS);
        if (t >= n) return;
        int seqOff = Layout.seqOff(R);
        int seq = step.get(seqOff + t);
        if (t + 1 < n && step.get(seqOff + t + 1) == seq) return; // not the sequence's last row
        int pb = Layout.paramOff(R) + seq * SLOT_PARAMS;
        if (step.get(pb + P_DMS) == 0) return;
        int window = step.get(pb + P_WINDOW);
        int L = cfg.get(LAYERS), hd = cfg.get(HEAD_DIM), cap = cfg.get(SLOTS), ringN = cfg.get(RING);
        int kvType = cfg.get(KV_TYPE), blocks = cfg.get(KV_BLOCKS);
        int head = (seq * L + ctrl.get(LAYER)) * kvHeads + g;
        int pos = step.get(Layout.posOff(R) + t);
        int live = headState.get(2 * head), pending = headState.get(2 * head + 1);
        int ringBase = head * ringN, slotBase = head * cap;
        // reclaim(pos): tokens whose window closed before the last query
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
        int heads = cfg.get(HEADS), splits = cfg.get(MAX_SPLITS), R = cfg.get(MAX_ROWS);
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
        int kvHeads = cfg.get(KV_HEADS), hd = cfg.get(HEAD_DIM), L = cfg.get(LAYERS), splits = cfg.get(MAX_SPLITS);
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

    // The FFN's gate and up projections and SwiGLU in one kernel (one work-group per FFN row r): both weight rows
    // share the input, and hb[t][r] = silu(gate[r] . x[t]) * (up[r] . x[t]) needs nothing from other rows. Thread 0
    // sets ctrl[LAYER_NEXT] for the down projection. One variant per stored type, as the matmuls.

    public static void gateUpF32(KernelContext kc, FloatArray gate, FloatArray up, FloatArray in, FloatArray hb, IntArray step, IntArray ctrl,
                                 int ffn, int cols) {
        int r = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        int layer = ctrl.get(LAYER);
        if ((r == 0 ? 1 : 0) * (lid == 0 ? 1 : 0) == 1) ctrl.set(LAYER_NEXT, layer + 1);
        int n = step.get(N_ROWS);
        float[] red = kc.allocateFloatLocalArray(MAX_LOCAL);
        int base = (layer * ffn + r) * cols;
        for (int t = 0; t < n; t++) {
            red[lid] = partialF32(gate, base, in, t * cols, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            kc.localBarrier();
            float g = red[0];
            kc.localBarrier();
            red[lid] = partialF32(up, base, in, t * cols, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if (lid == 0) hb.set(t * ffn + r, g / (1f + TornadoMath.exp(-g)) * red[0]);
            kc.localBarrier();
        }
    }

    public static void gateUpF16(KernelContext kc, ShortArray gate, ShortArray up, FloatArray lut, FloatArray in, FloatArray hb, IntArray step,
                                 IntArray ctrl, int ffn, int cols, int bf16) {
        int r = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        int layer = ctrl.get(LAYER);
        if ((r == 0 ? 1 : 0) * (lid == 0 ? 1 : 0) == 1) ctrl.set(LAYER_NEXT, layer + 1);
        int n = step.get(N_ROWS);
        float[] red = kc.allocateFloatLocalArray(MAX_LOCAL);
        int base = (layer * ffn + r) * cols;
        int lo = bf16 * LUT_BF16;
        for (int t = 0; t < n; t++) {
            red[lid] = partialF16(gate, lut, lo, base, in, t * cols, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            kc.localBarrier();
            float g = red[0];
            kc.localBarrier();
            red[lid] = partialF16(up, lut, lo, base, in, t * cols, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if (lid == 0) hb.set(t * ffn + r, g / (1f + TornadoMath.exp(-g)) * red[0]);
            kc.localBarrier();
        }
    }

    public static void gateUpQ8(KernelContext kc, ByteArray gate, ByteArray up, FloatArray lut, FloatArray in, FloatArray hb, IntArray step,
                                IntArray ctrl, int ffn, int cols) {
        int r = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        int layer = ctrl.get(LAYER);
        if ((r == 0 ? 1 : 0) * (lid == 0 ? 1 : 0) == 1) ctrl.set(LAYER_NEXT, layer + 1);
        int n = step.get(N_ROWS);
        float[] red = kc.allocateFloatLocalArray(MAX_LOCAL);
        int base = (layer * ffn + r) * (cols / 32) * 34;
        for (int t = 0; t < n; t++) {
            red[lid] = partialQ8(gate, lut, base, in, t * cols, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            kc.localBarrier();
            float g = red[0];
            kc.localBarrier();
            red[lid] = partialQ8(up, lut, base, in, t * cols, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if (lid == 0) hb.set(t * ffn + r, g / (1f + TornadoMath.exp(-g)) * red[0]);
            kc.localBarrier();
        }
    }

    public static void gateUpQ4(KernelContext kc, ByteArray gate, ByteArray up, FloatArray lut, FloatArray in, FloatArray hb, IntArray step,
                                IntArray ctrl, int ffn, int cols) {
        int r = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        int layer = ctrl.get(LAYER);
        if ((r == 0 ? 1 : 0) * (lid == 0 ? 1 : 0) == 1) ctrl.set(LAYER_NEXT, layer + 1);
        int n = step.get(N_ROWS);
        float[] red = kc.allocateFloatLocalArray(MAX_LOCAL);
        int base = (layer * ffn + r) * (cols / 32) * 18;
        for (int t = 0; t < n; t++) {
            red[lid] = partialQ4(gate, lut, base, in, t * cols, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            kc.localBarrier();
            float g = red[0];
            kc.localBarrier();
            red[lid] = partialQ4(up, lut, base, in, t * cols, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if (lid == 0) hb.set(t * ffn + r, g / (1f + TornadoMath.exp(-g)) * red[0]);
            kc.localBarrier();
        }
    }

    // The q, k and v projections in one kernel: work-groups below qDim each make one q row, the others one k row and
    // the v row of the same index (all read the same normed input). Every barrier sits outside the branches (PoCL
    // hung on barriers inside a branch, even one uniform per work-group), and each branch stores its product to local
    // memory (a value merged from the two branches came out wrong). One variant per stored type, as the matmuls.

    public static void qkvF32(KernelContext kc, FloatArray wq, FloatArray wk, FloatArray wv, FloatArray in, FloatArray q, FloatArray k, FloatArray v,
                                IntArray step, IntArray ctrl, int qDim, int kvDim, int cols) {
        int gi = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        int layer = ctrl.get(LAYER), n = step.get(N_ROWS), rowLen = cols;
        int j = gi - qDim; // the k/v row of the groups from qDim on
        float[] red = kc.allocateFloatLocalArray(MAX_LOCAL);
        for (int t = 0; t < n; t++) {
            if (gi < qDim) red[lid] = partialF32(wq, (layer * qDim + gi) * rowLen, in, t * cols, cols, lid, wg);
            else red[lid] = partialF32(wk, (layer * kvDim + j) * rowLen, in, t * cols, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if ((lid == 0 ? 1 : 0) * (gi < qDim ? 1 : 0) == 1) q.set(t * qDim + gi, red[0]);
            if ((lid == 0 ? 1 : 0) * (gi >= qDim ? 1 : 0) == 1) k.set(t * kvDim + j, red[0]);
            kc.localBarrier();
            red[lid] = 0f;
            if (gi >= qDim) red[lid] = partialF32(wv, (layer * kvDim + j) * rowLen, in, t * cols, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if ((lid == 0 ? 1 : 0) * (gi >= qDim ? 1 : 0) == 1) v.set(t * kvDim + j, red[0]);
            kc.localBarrier();
        }
    }

    public static void qkvF16(KernelContext kc, ShortArray wq, ShortArray wk, ShortArray wv, FloatArray lut, FloatArray in, FloatArray q, FloatArray k, FloatArray v,
                                IntArray step, IntArray ctrl, int qDim, int kvDim, int cols, int bf16) {
        int gi = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        int layer = ctrl.get(LAYER), n = step.get(N_ROWS), rowLen = cols;
        int j = gi - qDim; // the k/v row of the groups from qDim on
        int lo = bf16 * LUT_BF16;
        float[] red = kc.allocateFloatLocalArray(MAX_LOCAL);
        for (int t = 0; t < n; t++) {
            if (gi < qDim) red[lid] = partialF16(wq, lut, lo, (layer * qDim + gi) * rowLen, in, t * cols, cols, lid, wg);
            else red[lid] = partialF16(wk, lut, lo, (layer * kvDim + j) * rowLen, in, t * cols, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if ((lid == 0 ? 1 : 0) * (gi < qDim ? 1 : 0) == 1) q.set(t * qDim + gi, red[0]);
            if ((lid == 0 ? 1 : 0) * (gi >= qDim ? 1 : 0) == 1) k.set(t * kvDim + j, red[0]);
            kc.localBarrier();
            red[lid] = 0f;
            if (gi >= qDim) red[lid] = partialF16(wv, lut, lo, (layer * kvDim + j) * rowLen, in, t * cols, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if ((lid == 0 ? 1 : 0) * (gi >= qDim ? 1 : 0) == 1) v.set(t * kvDim + j, red[0]);
            kc.localBarrier();
        }
    }

    public static void qkvQ8(KernelContext kc, ByteArray wq, ByteArray wk, ByteArray wv, FloatArray lut, FloatArray in, FloatArray q, FloatArray k, FloatArray v,
                                IntArray step, IntArray ctrl, int qDim, int kvDim, int cols) {
        int gi = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        int layer = ctrl.get(LAYER), n = step.get(N_ROWS), rowLen = cols / 32 * 34;
        int j = gi - qDim; // the k/v row of the groups from qDim on
        float[] red = kc.allocateFloatLocalArray(MAX_LOCAL);
        for (int t = 0; t < n; t++) {
            if (gi < qDim) red[lid] = partialQ8(wq, lut, (layer * qDim + gi) * rowLen, in, t * cols, cols, lid, wg);
            else red[lid] = partialQ8(wk, lut, (layer * kvDim + j) * rowLen, in, t * cols, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if ((lid == 0 ? 1 : 0) * (gi < qDim ? 1 : 0) == 1) q.set(t * qDim + gi, red[0]);
            if ((lid == 0 ? 1 : 0) * (gi >= qDim ? 1 : 0) == 1) k.set(t * kvDim + j, red[0]);
            kc.localBarrier();
            red[lid] = 0f;
            if (gi >= qDim) red[lid] = partialQ8(wv, lut, (layer * kvDim + j) * rowLen, in, t * cols, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if ((lid == 0 ? 1 : 0) * (gi >= qDim ? 1 : 0) == 1) v.set(t * kvDim + j, red[0]);
            kc.localBarrier();
        }
    }

    public static void qkvQ4(KernelContext kc, ByteArray wq, ByteArray wk, ByteArray wv, FloatArray lut, FloatArray in, FloatArray q, FloatArray k, FloatArray v,
                                IntArray step, IntArray ctrl, int qDim, int kvDim, int cols) {
        int gi = kc.groupIdx, lid = kc.localIdx, wg = kc.localGroupSizeX;
        int layer = ctrl.get(LAYER), n = step.get(N_ROWS), rowLen = cols / 32 * 18;
        int j = gi - qDim; // the k/v row of the groups from qDim on
        float[] red = kc.allocateFloatLocalArray(MAX_LOCAL);
        for (int t = 0; t < n; t++) {
            if (gi < qDim) red[lid] = partialQ4(wq, lut, (layer * qDim + gi) * rowLen, in, t * cols, cols, lid, wg);
            else red[lid] = partialQ4(wk, lut, (layer * kvDim + j) * rowLen, in, t * cols, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if ((lid == 0 ? 1 : 0) * (gi < qDim ? 1 : 0) == 1) q.set(t * qDim + gi, red[0]);
            if ((lid == 0 ? 1 : 0) * (gi >= qDim ? 1 : 0) == 1) k.set(t * kvDim + j, red[0]);
            kc.localBarrier();
            red[lid] = 0f;
            if (gi >= qDim) red[lid] = partialQ4(wv, lut, (layer * kvDim + j) * rowLen, in, t * cols, cols, lid, wg);
            for (int s = wg / 2; s > 0; s /= 2) {
                kc.localBarrier();
                if (lid < s) red[lid] += red[lid + s];
            }
            if ((lid == 0 ? 1 : 0) * (gi >= qDim ? 1 : 0) == 1) v.set(t * kvDim + j, red[0]);
            kc.localBarrier();
        }
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
        for (int b = lid; b < cols / 32; b += wg) {
            int o = base + b * 34;
            float d = lut.get((w.get(o) & 0xFF) | ((w.get(o + 1) & 0xFF) << 8));
            int x0 = xo + b * 32;
            float s = 0f;
            for (int j = 0; j < 32; j++) s += w.get(o + 2 + j) * in.get(x0 + j);
            sum += d * s;
        }
        return sum;
    }

    static float partialQ4(ByteArray w, FloatArray lut, int base, FloatArray in, int xo, int cols, int lid, int wg) {
        float sum = 0f;
        for (int b = lid; b < cols / 32; b += wg) {
            int o = base + b * 18;
            float d = lut.get((w.get(o) & 0xFF) | ((w.get(o + 1) & 0xFF) << 8));
            int x0 = xo + b * 32;
            float s = 0f;
            for (int j = 0; j < 16; j++) {
                int q = w.get(o + 2 + j);
                s += ((q & 15) - 8) * in.get(x0 + j) + (((q >> 4) & 15) - 8) * in.get(x0 + j + 16);
            }
            sum += d * s;
        }
        return sum;
    }

    /** Greedy pick of each logits row (one work-group per row): the largest logit, lowest index on ties. */
    public static void argmax(KernelContext kc, FloatArray logits, IntArray picked, IntArray step, IntArray cfg, IntArray status) {
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
        if (lid == 0) picked.set(t, at[0]);
    }
}
