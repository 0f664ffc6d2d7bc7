package dev.fastdms.tornado;

import org.junit.jupiter.api.Test;
import uk.ac.manchester.tornado.api.GridScheduler;
import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.WorkerGrid1D;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;
import uk.ac.manchester.tornado.api.types.arrays.ByteArray;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;

import java.util.SplittableRandom;

import static dev.fastdms.tornado.Layout.*;
import static org.junit.jupiter.api.Assertions.*;

/** Each kernel against a plain-Java reference on random inputs, on the OpenCL device (PoCL on a CPU machine). */
class KernelsTest {
    static final int WG = 16, R = 4, SEQS = 2;
    final SplittableRandom rnd = new SplittableRandom(7);

    FloatArray randoms(int n) {
        FloatArray a = new FloatArray(n);
        for (int i = 0; i < n; i++) a.set(i, (float) rnd.nextGaussian());
        return a;
    }

    static WorkerGrid1D groups(int count) {
        WorkerGrid1D g = new WorkerGrid1D(count * WG);
        g.setLocalWork(WG, 1, 1);
        return g;
    }

    static IntArray step(int n, int mode) {
        IntArray s = new IntArray(stepSize(R, SEQS));
        s.set(N_ROWS, n);
        s.set(LOGITS_MODE, mode);
        return s;
    }

    static IntArray cfg(int dim) {
        IntArray c = new IntArray(CFG_SIZE);
        c.set(DIM, dim);
        c.set(MAX_ROWS, R);
        return c;
    }

    @Test
    void rmsnormMatchesReference() {
        int dim = 40, n = 3, L = 2;
        FloatArray in = randoms(R * dim), out = new FloatArray(R * dim), w = randoms(L * dim);
        FloatArray cfgF = new FloatArray(CFGF_SIZE);
        cfgF.set(EPS, 1e-5f);
        IntArray step = step(n, LOGITS_ALL), cfg = cfg(dim), ctrl = new IntArray(CTRL_SIZE);
        ctrl.set(LAYER, 1);
        KernelContext kc = new KernelContext();
        TaskGraph g = new TaskGraph("t").transferToDevice(DataTransferMode.EVERY_EXECUTION, in, w, step, cfg, cfgF, ctrl)
                .task("k", Kernels::rmsnorm, kc, in, out, w, step, cfg, cfgF, ctrl, 1, 0)
                .transferToHost(DataTransferMode.EVERY_EXECUTION, out);
        try (TornadoExecutionPlan p = new TornadoExecutionPlan(g.snapshot())) {
            p.withGridScheduler(new GridScheduler("t.k", groups(R))).execute();
        } catch (Exception e) { throw new RuntimeException(e); }
        for (int t = 0; t < n; t++) {
            double ss = 0;
            for (int k = 0; k < dim; k++) ss += in.get(t * dim + k) * in.get(t * dim + k);
            double inv = 1 / Math.sqrt(ss / dim + 1e-5);
            for (int k = 0; k < dim; k++) assertEquals(w.get(dim + k) * in.get(t * dim + k) * inv, out.get(t * dim + k), 1e-5, "row " + t + " col " + k);
        }
    }

    @Test
    void matmulF32MatchesReference() {
        int rows = 24, cols = 40, n = 3, L = 2;
        FloatArray w = randoms(L * rows * cols), in = randoms(R * cols), out = randoms(R * rows);
        float[] before = out.toHeapArray();
        IntArray step = step(n, LOGITS_ALL), ctrl = new IntArray(CTRL_SIZE);
        ctrl.set(LAYER, 1);
        KernelContext kc = new KernelContext();
        TaskGraph g = new TaskGraph("t").transferToDevice(DataTransferMode.EVERY_EXECUTION, w, in, out, step, ctrl)
                .task("k", Kernels::matmulF32, kc, w, in, out, step, ctrl, rows, cols, 1, 1, 0)
                .transferToHost(DataTransferMode.EVERY_EXECUTION, out);
        try (TornadoExecutionPlan p = new TornadoExecutionPlan(g.snapshot())) {
            p.withGridScheduler(new GridScheduler("t.k", groups(rows))).execute();
        } catch (Exception e) { throw new RuntimeException(e); }
        for (int t = 0; t < n; t++) {
            for (int r = 0; r < rows; r++) {
                double s = before[t * rows + r];
                for (int k = 0; k < cols; k++) s += w.get((rows + r) * cols + k) * in.get(t * cols + k);
                assertEquals(s, out.get(t * rows + r), 1e-4, "row " + t + " out " + r);
            }
        }
    }

    /** Causal attention through the device cache (append, partial splits, combine) vs a direct softmax. */
    @Test
    void attentionOverTheCompactCacheMatchesReference() {
        int heads = 4, kvHeads = 2, hd = 8, n = 4, slots = 300; // 300 slots: two splits
        IntArray cfg = new IntArray(CFG_SIZE);
        cfg.set(DIM, heads * hd); cfg.set(Q_DIM, heads * hd); cfg.set(KV_DIM, kvHeads * hd); cfg.set(HEAD_DIM, hd);
        cfg.set(HEADS, heads); cfg.set(KV_HEADS, kvHeads); cfg.set(LAYERS, 1); cfg.set(MAX_ROWS, R); cfg.set(SLOTS, slots);
        cfg.set(RING, R + 1); cfg.set(KV_TYPE, KV_F32); cfg.set(MAX_SPLITS, 2); cfg.set(MAX_SEQS, SEQS); cfg.set(KV_BLOCKS, 1);
        cfg.set(GROUP, heads / kvHeads);
        FloatArray cfgF = new FloatArray(CFGF_SIZE);
        cfgF.set(ATTN_SCALE, (float) (1 / Math.sqrt(hd)));
        IntArray step = step(n, LOGITS_NONE);
        step.set(SPLITS_NOW, 2);
        for (int t = 0; t < n; t++) { step.set(Layout.seqOff(R) + t, 1); step.set(Layout.posOff(R) + t, t); }
        FloatArray q = randoms(R * heads * hd), k = randoms(R * kvHeads * hd), v = randoms(R * kvHeads * hd);
        FloatArray att = new FloatArray(R * heads * hd), part = new FloatArray(R * heads * 2 * (hd + 2));
        IntArray ctrl = new IntArray(CTRL_SIZE), status = new IntArray(STATUS_SIZE);
        int headsAll = SEQS * kvHeads;
        IntArray headState = new IntArray(2 * headsAll), slotMeta = new IntArray(2 * headsAll * slots), ring = new IntArray(headsAll * (R + 1));
        FloatArray kF = new FloatArray(headsAll * slots * hd), vF = new FloatArray(headsAll * slots * hd), one = new FloatArray(1);
        ByteArray b1 = new ByteArray(1), b2 = new ByteArray(1), log = new ByteArray(1);
        // RoPE frequencies of 0: the rotation is the identity, the reference below needs none
        FloatArray lut = DeviceWeights.lookupTables(new float[hd / 2]), s1 = new FloatArray(1), s2 = new FloatArray(1);
        FloatArray stepF = new FloatArray(SEQS * SLOT_FPARAMS);
        KernelContext kc = new KernelContext();
        TaskGraph g = new TaskGraph("t").transferToDevice(DataTransferMode.EVERY_EXECUTION, cfg, cfgF, step, stepF, q, k, v, ctrl, log, status,
                        headState, slotMeta, ring, kF, vF, b1, b2, s1, s2, lut, part, att, one)
                .task("append", Kernels::ropeAppend, kc, q, k, v, step, stepF, cfg, ctrl, log, headState, slotMeta, ring, kF, vF, b1, b2, s1, s2, lut, status)
                .task("partial", Kernels::attnPartial, kc, q, step, cfg, cfgF, ctrl, headState, slotMeta, kF, vF, b1, b2, s1, s2, lut, part)
                .task("combine", Kernels::attnCombine, kc, part, att, step, cfg, ctrl, headState)
                .transferToHost(DataTransferMode.EVERY_EXECUTION, att, headState);
        GridScheduler gs = new GridScheduler();
        gs.addWorkerGrid("t.append", groups(R * kvHeads));
        gs.addWorkerGrid("t.partial", groups(R * heads * 2));
        gs.addWorkerGrid("t.combine", groups(R * heads));
        try (TornadoExecutionPlan p = new TornadoExecutionPlan(g.snapshot())) {
            p.withGridScheduler(gs).execute();
        } catch (Exception e) { throw new RuntimeException(e); }
        assertEquals(n, headState.get(2 * (kvHeads + 0)), "live tokens of sequence 1, head 0");
        for (int t = 0; t < n; t++) {
            for (int h = 0; h < heads; h++) {
                int g2 = h / (heads / kvHeads);
                double[] sc = new double[t + 1];
                double mx = -1e30, sum = 0;
                for (int p2 = 0; p2 <= t; p2++) {
                    double d = 0;
                    for (int i = 0; i < hd; i++) d += q.get((t * heads + h) * hd + i) * k.get((p2 * kvHeads + g2) * hd + i);
                    sc[p2] = d / Math.sqrt(hd);
                    mx = Math.max(mx, sc[p2]);
                }
                for (int p2 = 0; p2 <= t; p2++) { sc[p2] = Math.exp(sc[p2] - mx); sum += sc[p2]; }
                for (int i = 0; i < hd; i++) {
                    double o = 0;
                    for (int p2 = 0; p2 <= t; p2++) o += sc[p2] / sum * v.get((p2 * kvHeads + g2) * hd + i);
                    assertEquals(o, att.get((t * heads + h) * hd + i), 1e-5, "row " + t + " head " + h + " dim " + i);
                }
            }
        }
    }

    /** Quantised and 16-bit matrix products against the JVM's own tensors (the model module's reference kernels). */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"Q8_0", "Q4_0", "F16", "BF16"})
    void matmulOfStoredTypesMatchesJvmTensors(String type) {
        int rows = 24, cols = 96, n = 3;
        dev.fastdms.model.tensor.GgmlType t = dev.fastdms.model.tensor.GgmlType.valueOf(type);
        int bytes = switch (type) { case "Q8_0" -> rows * cols / 32 * 34; case "Q4_0" -> rows * cols / 32 * 18; default -> rows * cols * 2; };
        byte[] raw = new byte[bytes];
        for (int i = 0; i < bytes; i++) raw[i] = (byte) rnd.nextInt(256);
        // sane block scales / 16-bit values: small normal f16 numbers (exponent bits 0x2C..0x3B)
        if (type.startsWith("Q")) {
            int bs = type.equals("Q8_0") ? 34 : 18;
            for (int o = 0; o < bytes; o += bs) { raw[o] = (byte) rnd.nextInt(256); raw[o + 1] = (byte) (0x20 + rnd.nextInt(0x10)); }
        } else {
            for (int o = 0; o < bytes; o += 2) raw[o + 1] = (byte) ((type.equals("F16") ? 0x30 : 0x3D) + rnd.nextInt(4) | (rnd.nextBoolean() ? 0x80 : 0));
        }
        java.lang.foreign.MemorySegment seg = java.lang.foreign.MemorySegment.ofArray(raw);
        dev.fastdms.model.tensor.FloatTensor ref = dev.fastdms.model.tensor.FloatTensor.of(t, seg, (long) rows * cols);
        FloatArray in = randoms(R * cols), out = new FloatArray(R * rows), lut = DeviceWeights.lookupTables();
        IntArray step = step(n, LOGITS_ALL), ctrl = new IntArray(CTRL_SIZE);
        KernelContext kc = new KernelContext();
        TaskGraph g = new TaskGraph("t").transferToDevice(DataTransferMode.EVERY_EXECUTION, in, out, step, ctrl, lut);
        if (type.startsWith("Q")) {
            ByteArray w = ByteArray.fromArray(raw);
            g.transferToDevice(DataTransferMode.EVERY_EXECUTION, w);
            if (type.equals("Q8_0")) g.task("k", Kernels::matmulQ8, kc, w, lut, in, out, step, ctrl, rows, cols, 0, 0, 0);
            else g.task("k", Kernels::matmulQ4, kc, w, lut, in, out, step, ctrl, rows, cols, 0, 0, 0);
        } else {
            ShortArray w = new ShortArray(rows * cols);
            for (int i = 0; i < rows * cols; i++) w.set(i, (short) ((raw[2 * i] & 0xFF) | (raw[2 * i + 1] << 8)));
            g.transferToDevice(DataTransferMode.EVERY_EXECUTION, w);
            g.task("k", Kernels::matmulF16, kc, w, lut, in, out, step, ctrl, rows, cols, 0, 0, 0, type.equals("BF16") ? 1 : 0);
        }
        g.transferToHost(DataTransferMode.EVERY_EXECUTION, out);
        try (TornadoExecutionPlan p = new TornadoExecutionPlan(g.snapshot())) {
            p.withGridScheduler(new GridScheduler("t.k", groups(rows))).execute();
        } catch (Exception e) { throw new RuntimeException(e); }
        float[] x = in.toHeapArray(), want = new float[rows];
        for (int r0 = 0; r0 < n; r0++) {
            ref.matvec(x, r0 * cols, want, 0, rows, cols);
            for (int r = 0; r < rows; r++) assertEquals(want[r], out.get(r0 * rows + r), 1e-4 * (1 + Math.abs(want[r])), type + " row " + r0 + " out " + r);
        }
    }
    /**
     * The device cache's DMS kernels (ropeAppend's decisions and appends, the end-of-step reclaim in the output
     * projection outProjF32) against the protocol they mirror, cache/'s DmsStep on a HeadKv: random steps of 1..4 rows
     * with random decisions (from the borrowed query channel: scale 1, offset 0) under both conventions; after every
     * step each head holds the same positions with the same keys (so decisions, flags, reclaim and
     * move-last-into-hole agree), and the borrowed channel is zeroed.
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.EnumSource(dev.fastdms.cache.DmsConfig.Convention.class)
    void dmsKernelsMirrorTheCacheProtocol(dev.fastdms.cache.DmsConfig.Convention conv) {
        int kvHeads = 2, hd = 4, slots = 64, window = 3, ringN = window + R + 1, T = 48;
        var dms = new dev.fastdms.cache.DmsConfig(window, 1f, 0f, conv);
        IntArray cfg = new IntArray(CFG_SIZE);
        cfg.set(KV_DIM, kvHeads * hd); cfg.set(HEAD_DIM, hd); cfg.set(KV_HEADS, kvHeads); cfg.set(LAYERS, 1); cfg.set(MAX_ROWS, R);
        cfg.set(SLOTS, slots); cfg.set(RING, ringN); cfg.set(KV_TYPE, KV_F32); cfg.set(MAX_SEQS, SEQS); cfg.set(KV_BLOCKS, 1);
        cfg.set(HEADS, kvHeads); cfg.set(GROUP, 1); cfg.set(DIM, 1); cfg.set(Q_DIM, 1);
        IntArray step = step(0, LOGITS_NONE), ctrl = new IntArray(CTRL_SIZE), status = new IntArray(STATUS_SIZE);
        FloatArray stepF = new FloatArray(SEQS * SLOT_FPARAMS);
        stepF.set(F_SCALE, 1f); // sequence slot 0: evict when the borrowed channel is positive
        FloatArray q = new FloatArray(R * kvHeads * hd), wo = new FloatArray(1), att = new FloatArray(R), xres = new FloatArray(R);
        ByteArray log = new ByteArray(1);
        int pb = Layout.paramOff(R); // sequence slot 0
        step.set(pb + P_DMS, 1); step.set(pb + P_WINDOW, window); step.set(pb + P_NVIDIA, conv == dev.fastdms.cache.DmsConfig.Convention.NVIDIA ? 1 : 0);
        int headsAll = SEQS * kvHeads;
        IntArray headState = new IntArray(2 * headsAll), slotMeta = new IntArray(2 * headsAll * slots), ring = new IntArray(headsAll * ringN);
        FloatArray k = new FloatArray(R * kvHeads * hd), v = new FloatArray(R * kvHeads * hd);
        FloatArray kF = new FloatArray(headsAll * slots * hd), vF = new FloatArray(headsAll * slots * hd);
        ByteArray b1 = new ByteArray(1), b2 = new ByteArray(1);
        FloatArray lut = DeviceWeights.lookupTables(new float[hd / 2]), s1 = new FloatArray(1), s2 = new FloatArray(1); // RoPE: identity
        KernelContext kc = new KernelContext();
        TaskGraph g = new TaskGraph("m").transferToDevice(DataTransferMode.FIRST_EXECUTION, cfg, ctrl, status, headState, slotMeta, ring, kF, vF, b1, b2, s1, s2, lut,
                        stepF, log, wo, att, xres)
                .transferToDevice(DataTransferMode.EVERY_EXECUTION, step, q, k, v)
                .task("append", Kernels::ropeAppend, kc, q, k, v, step, stepF, cfg, ctrl, log, headState, slotMeta, ring, kF, vF, b1, b2, s1, s2, lut, status)
                .task("reclaim", Kernels::outProjF32, kc, wo, att, xres, step, cfg, ctrl, headState, slotMeta, ring, kF, vF, b1, b2, s1, s2)
                .transferToHost(DataTransferMode.EVERY_EXECUTION, headState, slotMeta, kF, status, q);
        GridScheduler gs = new GridScheduler();
        gs.addWorkerGrid("m.append", groups(R * kvHeads));
        gs.addWorkerGrid("m.reclaim", groups(1));
        dev.fastdms.cache.HeadKv[] ref = new dev.fastdms.cache.HeadKv[kvHeads];
        for (int h = 0; h < kvHeads; h++) ref[h] = new dev.fastdms.cache.HeadKv(hd, 8, window);
        float[] kh = new float[R * kvHeads * hd];
        boolean[] flag = new boolean[R * kvHeads];
        try (TornadoExecutionPlan p = new TornadoExecutionPlan(g.snapshot())) {
            p.withGridScheduler(gs);
            for (int pos = 0; pos < T; ) {
                int n = Math.min(T - pos, 1 + rnd.nextInt(R));
                step.set(N_ROWS, n);
                for (int t = 0; t < n; t++) {
                    step.set(Layout.seqOff(R) + t, 0);
                    step.set(Layout.posOff(R) + t, pos + t);
                    for (int h = 0; h < kvHeads; h++) {
                        flag[t * kvHeads + h] = rnd.nextInt(3) > 0;
                        for (int d = 0; d < hd; d++) q.set((t * kvHeads + h) * hd + d, (float) rnd.nextGaussian());
                        float mag = 0.5f + rnd.nextFloat();
                        q.set((t * kvHeads + h) * hd + hd - 1, flag[t * kvHeads + h] ? mag : -mag);
                        for (int d = 0; d < hd; d++) { kh[(t * kvHeads + h) * hd + d] = (float) rnd.nextGaussian(); k.set((t * kvHeads + h) * hd + d, kh[(t * kvHeads + h) * hd + d]); }
                    }
                }
                p.execute();
                for (int h = 0; h < kvHeads; h++) {
                    for (int t = 0; t < n; t++) {
                        dev.fastdms.cache.DmsStep.append(ref[h], dms, flag[t * kvHeads + h], t == 0, pos + t, kh, (t * kvHeads + h) * hd, kh, 0);
                        assertEquals(0f, q.get((t * kvHeads + h) * hd + hd - 1), "borrowed channel zeroed");
                    }
                    dev.fastdms.cache.DmsStep.endStep(ref[h], dms, pos + n - 1);
                }
                pos += n;
                assertEquals(0, status.get(STATUS_FULL));
                for (int h = 0; h < kvHeads; h++) {
                    String at = conv + " step ending at " + (pos - 1) + ", head " + h;
                    int live = headState.get(2 * h);
                    assertEquals(ref[h].live(), live, at + ": live slots");
                    java.util.Map<Integer, Float> want = new java.util.HashMap<>(), got = new java.util.HashMap<>();
                    float[] key = new float[hd];
                    for (int sl = 0; sl < live; sl++) {
                        ref[h].readKey(sl, key, 0);
                        want.put(ref[h].position(sl), key[0]);
                        got.put(slotMeta.get(2 * (h * slots + sl)), kF.get((h * slots + sl) * hd));
                    }
                    assertEquals(want, got, at + ": positions held and their keys");
                }
            }
        } catch (Exception e) { throw new RuntimeException(e); }
    }
}
