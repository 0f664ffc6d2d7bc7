package dev.fastdms.tornado;

import dev.fastdms.model.ModelConfig;
import uk.ac.manchester.tornado.api.DataRange;
import uk.ac.manchester.tornado.api.GridScheduler;
import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.TornadoExecutionResult;
import uk.ac.manchester.tornado.api.WorkerGrid1D;
import uk.ac.manchester.tornado.api.common.TornadoDevice;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;
import uk.ac.manchester.tornado.api.enums.ProfilerMode;
import uk.ac.manchester.tornado.api.types.arrays.ByteArray;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;

import static dev.fastdms.tornado.Layout.*;

/**
 * The TornadoVM planning layer: the device arrays of one model (weights, activations, the compacted KV cache) and
 * the three task graphs of a forward step, built once and reused for every step.
 *
 * <ul>
 *   <li>{@code step}: the step's rows come in (token ids, their sequences and positions, per-sequence DMS parameters:
 *   the only host-to-device copy of a step), the layer counter is rewound, embeddings are looked up;</li>
 *   <li>{@code layer}: one transformer layer — executed once per layer, the kernels index every weight and cache
 *   array with the layer counter, which the FFN's kernels move on (see {@link Layout#LAYER_NEXT});</li>
 *   <li>{@code head}: final norm, logits and the greedy pick; only the picked ids, the status word, and the logits when
 *   asked for, come back.</li>
 * </ul>
 * Weights and the cache are copied to the device on first execution and never again; the graphs hand the residual
 * stream and the step's rows to each other on the device ({@code persistOnDevice} / {@code consumeFromDevice}).
 */
final class ForwardGraphs implements AutoCloseable {
    final ModelConfig c;
    final int maxRows, maxSeqs, slots, ringSize, kvType, splits, kvBlocks, logCtx, localSize;
    final boolean logDecisions;

    final IntArray cfg, step, ctrl, status, headState, slotMeta, ring;
    final FloatArray cfgF, stepF, lut, x, xb, q, k, v, att, hb, hb2, part, logits;
    final FloatArray kF, vF, kS, vS;
    final ByteArray kB, vB, log;
    private final DeviceWeights w;
    private final TornadoExecutionPlan plan;
    private TornadoExecutionResult lastLayer, lastHead;
    private long bytesIn, bytesOut;
    private boolean profile;
    private final GridScheduler grid = new GridScheduler();
    private final java.util.Map<String, Integer> tasks = new java.util.HashMap<>();
    /** Kernel launches (tasks executed) in one forward step: the step graph, the layer graph once per layer, the head. */
    final int launchesPerStep;
    /** Grids over the step's rows, resized every step to the rows it has (perRow work-groups per row). */
    private record RowGrid(WorkerGrid1D grid, int perRow) {}
    private final java.util.List<RowGrid> rowGrids = new java.util.ArrayList<>();
    private WorkerGrid1D gBegin, gPartial;

    ForwardGraphs(ModelConfig c, DeviceWeights w, float[] ropeInvFreq, int maxRows, int maxSeqs, int slots, int maxWindow,
                  int kvType, boolean logDecisions, TornadoDevice device, int localSize, boolean profile) {
        this.c = c;
        this.w = w;
        this.maxRows = maxRows;
        this.maxSeqs = maxSeqs;
        this.slots = slots;
        this.ringSize = ringSize(maxWindow, maxRows);
        this.kvType = kvType;
        this.splits = (slots + CHUNK - 1) / CHUNK;
        this.kvBlocks = kvType == KV_Q8 ? (c.headDim() % 32 == 0 ? c.headDim() / 32 : 1) : 1;
        this.logDecisions = logDecisions;
        this.logCtx = c.contextLength();
        this.localSize = localSize;
        this.profile = profile;
        int L = c.layers(), kvh = c.kvHeads(), hd = c.headDim();
        long heads = (long) maxSeqs * L * kvh;
        long rows = heads * slots;
        if (rows * hd > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("the device KV cache (" + maxSeqs + " sequences x " + slots + " slots per head) exceeds what one TornadoVM array can index; lower --kv-slots or --ctx");
        }
        cfg = new IntArray(CFG_SIZE);
        int[] cv = new int[CFG_SIZE];
        cv[DIM] = c.dim(); cv[Q_DIM] = c.qDim(); cv[KV_DIM] = c.kvDim(); cv[HEAD_DIM] = hd; cv[HEADS] = c.heads();
        cv[KV_HEADS] = kvh; cv[FFN] = c.ffnDim(); cv[VOCAB] = c.vocabSize(); cv[LAYERS] = L; cv[MAX_ROWS] = maxRows;
        cv[SLOTS] = slots; cv[RING] = ringSize; cv[KV_TYPE] = kvType; cv[MAX_SPLITS] = splits; cv[ROPE_HALF] = c.ropeHalf() ? 1 : 0;
        cv[LOG_CTX] = logCtx; cv[LOG_ON] = logDecisions ? 1 : 0; cv[MAX_SEQS] = maxSeqs; cv[KV_BLOCKS] = kvBlocks; cv[GROUP] = c.groupSize();
        for (int i = 0; i < CFG_SIZE; i++) cfg.set(i, cv[i]);
        cfgF = new FloatArray(CFGF_SIZE);
        cfgF.set(EPS, c.rmsEps());
        cfgF.set(ATTN_SCALE, (float) (1.0 / Math.sqrt(hd)));
        step = new IntArray(stepSize(maxRows, maxSeqs));
        stepF = new FloatArray(maxSeqs * SLOT_FPARAMS);
        ctrl = new IntArray(CTRL_SIZE);
        status = new IntArray(STATUS_SIZE + maxRows); // the status words, then the picks
        lut = DeviceWeights.lookupTables(ropeInvFreq);
        x = new FloatArray(maxRows * c.dim());
        xb = new FloatArray(maxRows * Math.max(c.dim(), c.qDim()));
        q = new FloatArray(maxRows * c.qDim());
        k = new FloatArray(maxRows * c.kvDim());
        v = new FloatArray(maxRows * c.kvDim());
        att = new FloatArray(maxRows * c.qDim());
        hb = new FloatArray(maxRows * c.ffnDim());
        hb2 = new FloatArray(maxRows * c.ffnDim());
        part = new FloatArray(Math.toIntExact((long) maxRows * c.heads() * splits * (hd + 2)));
        logits = new FloatArray(Math.toIntExact((long) maxRows * c.vocabSize()));
        headState = new IntArray(Math.toIntExact(2 * heads));
        slotMeta = new IntArray(Math.toIntExact(2 * rows));
        ring = new IntArray(Math.toIntExact(heads * ringSize));
        boolean f32 = kvType == KV_F32;
        kF = new FloatArray(f32 ? Math.toIntExact(rows * hd) : 1);
        vF = new FloatArray(f32 ? Math.toIntExact(rows * hd) : 1);
        kB = new ByteArray(f32 ? 1 : Math.toIntExact(rows * hd));
        vB = new ByteArray(f32 ? 1 : Math.toIntExact(rows * hd));
        kS = new FloatArray(f32 ? 1 : Math.toIntExact(rows * kvBlocks));
        vS = new FloatArray(f32 ? 1 : Math.toIntExact(rows * kvBlocks));
        log = new ByteArray(logDecisions ? Math.toIntExact(heads * logCtx) : 1);

        KernelContext kc = new KernelContext();

        // ---- step (a graph may only consume from the graph just before it, and only what its tasks use)
        TaskGraph g0 = new TaskGraph("step")
                .transferToDevice(DataTransferMode.EVERY_EXECUTION, step, stepF)
                .transferToDevice(DataTransferMode.FIRST_EXECUTION, cfg, cfgF, ctrl, status, lut);
        // one kernel: thread 0 checks the input and rewinds the layer counter, every thread embeds an element
        g0.transferToDevice(DataTransferMode.FIRST_EXECUTION, w.embedding.data(), x);
        switch (w.embedding.kind()) {
            case F32 -> g0.task("begin", Kernels::beginEmbedF32, kc, (FloatArray) w.embedding.data(), lut, x, step, stepF, cfg, cfgF, ctrl, status);
            case F16, BF16 -> g0.task("begin", Kernels::beginEmbedF16, kc, (ShortArray) w.embedding.data(), lut, x, step, stepF, cfg, cfgF, ctrl, status,
                    w.embedding.kind() == DeviceWeights.Kind.BF16 ? 1 : 0);
            case Q8_0 -> g0.task("begin", Kernels::beginEmbedQ8, kc, (ByteArray) w.embedding.data(), lut, x, step, stepF, cfg, cfgF, ctrl, status);
            case Q4_0 -> g0.task("begin", Kernels::beginEmbedQ4, kc, (ByteArray) w.embedding.data(), lut, x, step, stepF, cfg, cfgF, ctrl, status);
        }
        gBegin = flat(maxRows * c.dim());
        grid("step.begin", gBegin);
        if (w.tiedOutput) g0.persistOnDevice(step, stepF, cfg, cfgF, ctrl, status, lut, x, w.embedding.data());
        else g0.persistOnDevice(step, stepF, cfg, cfgF, ctrl, status, lut, x);

        // ---- layer
        TaskGraph g1 = new TaskGraph("layer")
                .consumeFromDevice("step", step, stepF, cfg, cfgF, ctrl, status, lut, x);
        if (w.tiedOutput) g1.consumeFromDevice("step", w.embedding.data()); // passed on to the head's logits
        g1.transferToDevice(DataTransferMode.FIRST_EXECUTION, w.wq.data(), w.wk.data(), w.wv.data(), w.wo.data(),
                        w.gate.data(), w.up.data(), w.down.data(), w.attnNorm, w.ffnNorm, w.qNorm, w.kNorm)
                .transferToDevice(DataTransferMode.FIRST_EXECUTION, xb, q, k, v, att, hb, hb2, part, headState,
                        slotMeta, ring, kF, vF, kB, vB, kS, vS, log);
        int dim = c.dim(), qDim = c.qDim(), kvDim = c.kvDim(), ffn = c.ffnDim();
        if (w.wq.kind() == w.wk.kind() && w.wk.kind() == w.wv.kind()) { // attention norm + q, k, v in one kernel
            switch (w.wq.kind()) {
                case F32 -> g1.task("qkv", Kernels::qkvNormF32, kc, (FloatArray) w.wq.data(), (FloatArray) w.wk.data(), (FloatArray) w.wv.data(),
                        x, w.attnNorm, cfgF, q, k, v, step, ctrl, qDim, kvDim, dim);
                case F16, BF16 -> g1.task("qkv", Kernels::qkvNormF16, kc, (ShortArray) w.wq.data(), (ShortArray) w.wk.data(), (ShortArray) w.wv.data(),
                        lut, x, w.attnNorm, cfgF, q, k, v, step, ctrl, qDim, kvDim, dim, w.wq.kind() == DeviceWeights.Kind.BF16 ? 1 : 0);
                case Q8_0 -> g1.task("qkv", Kernels::qkvNormQ8, kc, (ByteArray) w.wq.data(), (ByteArray) w.wk.data(), (ByteArray) w.wv.data(),
                        lut, x, w.attnNorm, cfgF, q, k, v, step, ctrl, qDim, kvDim, dim);
                case Q4_0 -> g1.task("qkv", Kernels::qkvNormQ4, kc, (ByteArray) w.wq.data(), (ByteArray) w.wk.data(), (ByteArray) w.wv.data(),
                        lut, x, w.attnNorm, cfgF, q, k, v, step, ctrl, qDim, kvDim, dim);
            }
            grid("layer.qkv", groups(qDim + kvDim));
        } else { // mixed-type files: the norm, then three products
            g1.task("attnNorm", Kernels::rmsnorm, kc, x, xb, w.attnNorm, step, cfg, cfgF, ctrl, 1, 0);
            grid("layer.attnNorm", rowGrid(groups(maxRows), 1));
            matmul(g1, "layer", "wq", w.wq, xb, q, qDim, dim, 1, false, false, kc);
            matmul(g1, "layer", "wk", w.wk, xb, k, kvDim, dim, 1, false, false, kc);
            matmul(g1, "layer", "wv", w.wv, xb, v, kvDim, dim, 1, false, false, kc);
        }
        if (c.qkNorm()) {
            g1.task("qNorm", Kernels::headNorm, kc, q, w.qNorm, step, cfg, cfgF, ctrl, c.heads());
            grid("layer.qNorm", rowGrid(groups(maxRows * c.heads()), c.heads()));
            g1.task("kNorm", Kernels::headNorm, kc, k, w.kNorm, step, cfg, cfgF, ctrl, c.kvHeads());
            grid("layer.kNorm", rowGrid(groups(maxRows * c.kvHeads()), c.kvHeads()));
        }
        g1.task("ropeAppend", Kernels::ropeAppend, kc, q, k, v, step, stepF, cfg, ctrl, log, headState, slotMeta, ring, kF, vF, kB, vB, kS, vS, lut, status);
        grid("layer.ropeAppend", rowGrid(groups(maxRows * kvh), kvh));
        g1.task("attnPartial", Kernels::attnPartial, kc, q, step, cfg, cfgF, ctrl, headState, slotMeta, kF, vF, kB, vB, kS, vS, lut, part);
        gPartial = groups(maxRows * c.heads() * splits);
        grid("layer.attnPartial", gPartial);
        g1.task("attnCombine", Kernels::attnCombine, kc, part, att, step, cfg, ctrl, headState);
        grid("layer.attnCombine", rowGrid(groups(maxRows * c.heads()), c.heads()));
        // the output projection + residual, with the end-of-step reclaim in its threads
        switch (w.wo.kind()) {
            case F32 -> g1.task("wo", Kernels::outProjF32, kc, (FloatArray) w.wo.data(), att, x, step, cfg, ctrl, headState, slotMeta, ring, kF, vF, kB, vB, kS, vS);
            case F16, BF16 -> g1.task("wo", Kernels::outProjF16, kc, (ShortArray) w.wo.data(), lut, att, x, step, cfg, ctrl, headState, slotMeta, ring,
                    kF, vF, kB, vB, kS, vS, w.wo.kind() == DeviceWeights.Kind.BF16 ? 1 : 0);
            case Q8_0 -> g1.task("wo", Kernels::outProjQ8, kc, (ByteArray) w.wo.data(), lut, att, x, step, cfg, ctrl, headState, slotMeta, ring, kF, vF, kB, vB, kS, vS);
            case Q4_0 -> g1.task("wo", Kernels::outProjQ4, kc, (ByteArray) w.wo.data(), lut, att, x, step, cfg, ctrl, headState, slotMeta, ring, kF, vF, kB, vB, kS, vS);
        }
        grid("layer.wo", groups(dim));
        if (w.gate.kind() == w.up.kind()) { // FFN norm + gate + up + SwiGLU in one kernel
            switch (w.gate.kind()) {
                case F32 -> g1.task("gateUp", Kernels::gateUpNormF32, kc, (FloatArray) w.gate.data(), (FloatArray) w.up.data(), x, w.ffnNorm, cfgF, hb, step, ctrl, ffn, dim);
                case F16, BF16 -> g1.task("gateUp", Kernels::gateUpNormF16, kc, (ShortArray) w.gate.data(), (ShortArray) w.up.data(), lut, x, w.ffnNorm, cfgF, hb,
                        step, ctrl, ffn, dim, w.gate.kind() == DeviceWeights.Kind.BF16 ? 1 : 0);
                case Q8_0 -> g1.task("gateUp", Kernels::gateUpNormQ8, kc, (ByteArray) w.gate.data(), (ByteArray) w.up.data(), lut, x, w.ffnNorm, cfgF, hb, step, ctrl, ffn, dim);
                case Q4_0 -> g1.task("gateUp", Kernels::gateUpNormQ4, kc, (ByteArray) w.gate.data(), (ByteArray) w.up.data(), lut, x, w.ffnNorm, cfgF, hb, step, ctrl, ffn, dim);
            }
            grid("layer.gateUp", groups(ffn));
        } else { // mixed-type files: the norm, two products, then SwiGLU
            g1.task("ffnNorm", Kernels::rmsnorm, kc, x, xb, w.ffnNorm, step, cfg, cfgF, ctrl, 1, 0);
            grid("layer.ffnNorm", rowGrid(groups(maxRows), 1));
            matmul(g1, "layer", "gate", w.gate, xb, hb, ffn, dim, 1, false, false, kc);
            matmul(g1, "layer", "up", w.up, xb, hb2, ffn, dim, 1, false, false, kc);
            g1.task("swiglu", Kernels::swiglu, kc, hb, hb2, step, cfg, ctrl);
            grid("layer.swiglu", flat(maxRows * ffn));
        }
        matmul(g1, "layer", "down", w.down, hb, x, dim, ffn, 2, true, false, kc);
        g1.transferToHost(DataTransferMode.UNDER_DEMAND, headState, log);
        boolean headUsesLut = w.output.kind() != DeviceWeights.Kind.F32;
        if (w.tiedOutput && headUsesLut) g1.persistOnDevice(step, cfg, cfgF, ctrl, status, x, lut, w.embedding.data());
        else if (w.tiedOutput) g1.persistOnDevice(step, cfg, cfgF, ctrl, status, x, w.embedding.data());
        else if (headUsesLut) g1.persistOnDevice(step, cfg, cfgF, ctrl, status, x, lut);
        else g1.persistOnDevice(step, cfg, cfgF, ctrl, status, x);

        // ---- head
        TaskGraph g2 = new TaskGraph("head");
        if (headUsesLut) g2.consumeFromDevice("layer", step, cfg, cfgF, ctrl, status, x, lut);
        else g2.consumeFromDevice("layer", step, cfg, cfgF, ctrl, status, x);
        if (w.tiedOutput) g2.consumeFromDevice("layer", w.output.data());
        else g2.transferToDevice(DataTransferMode.FIRST_EXECUTION, w.output.data());
        g2.transferToDevice(DataTransferMode.FIRST_EXECUTION, w.outputNorm, logits);
        int vocab = c.vocabSize();
        switch (w.output.kind()) { // the final norm + logits in one kernel
            case F32 -> g2.task("logits", Kernels::logitsF32, kc, (FloatArray) w.output.data(), x, w.outputNorm, cfgF, logits, step, vocab, dim);
            case F16, BF16 -> g2.task("logits", Kernels::logitsF16, kc, (ShortArray) w.output.data(), lut, x, w.outputNorm, cfgF, logits, step, vocab, dim,
                    w.output.kind() == DeviceWeights.Kind.BF16 ? 1 : 0);
            case Q8_0 -> g2.task("logits", Kernels::logitsQ8, kc, (ByteArray) w.output.data(), lut, x, w.outputNorm, cfgF, logits, step, vocab, dim);
            case Q4_0 -> g2.task("logits", Kernels::logitsQ4, kc, (ByteArray) w.output.data(), lut, x, w.outputNorm, cfgF, logits, step, vocab, dim);
        }
        grid("head.logits", groups(vocab));
        g2.task("argmax", Kernels::argmax, kc, logits, step, cfg, status);
        grid("head.argmax", rowGrid(groups(maxRows), 1));
        g2.transferToHost(DataTransferMode.UNDER_DEMAND, logits, status);

        plan = new TornadoExecutionPlan(g0.snapshot(), g1.snapshot(), g2.snapshot());
        plan.withGridScheduler(grid);
        launchesPerStep = tasks.getOrDefault("step", 0) + c.layers() * tasks.getOrDefault("layer", 0) + tasks.getOrDefault("head", 0);
        if (device != null) plan.withDevice(device);
        if (profile) plan.withProfiler(ProfilerMode.SILENT);
    }

    private void matmul(TaskGraph g, String graph, String name, DeviceWeights.Matrix m, FloatArray in, FloatArray out,
                        int rowsOut, int cols, int lay, boolean accumulate, boolean head, KernelContext kc) {
        int acc = accumulate ? 1 : 0, hd = head ? 1 : 0;
        switch (m.kind()) {
            case F32 -> g.task(name, Kernels::matmulF32, kc, (FloatArray) m.data(), in, out, step, ctrl, rowsOut, cols, lay, acc, hd);
            case F16, BF16 -> g.task(name, Kernels::matmulF16, kc, (ShortArray) m.data(), lut, in, out, step, ctrl, rowsOut, cols, lay, acc, hd,
                    m.kind() == DeviceWeights.Kind.BF16 ? 1 : 0);
            case Q8_0 -> g.task(name, Kernels::matmulQ8, kc, (ByteArray) m.data(), lut, in, out, step, ctrl, rowsOut, cols, lay, acc, hd);
            case Q4_0 -> g.task(name, Kernels::matmulQ4, kc, (ByteArray) m.data(), lut, in, out, step, ctrl, rowsOut, cols, lay, acc, hd);
        }
        grid(graph + "." + name, groups(rowsOut));
    }

    /** Every task has exactly one worker grid: registering it here also counts the graph's tasks. */
    private void grid(String task, WorkerGrid1D w) {
        grid.addWorkerGrid(task, w);
        tasks.merge(task.substring(0, task.indexOf('.')), 1, Integer::sum);
    }

    /** One work-group per item. */
    private WorkerGrid1D groups(int count) {
        WorkerGrid1D g = new WorkerGrid1D(count * localSize);
        g.setLocalWork(localSize, 1, 1);
        return g;
    }

    /** One thread per item, rounded up to whole work-groups. */
    private WorkerGrid1D flat(int count) {
        WorkerGrid1D g = new WorkerGrid1D(roundUp(count));
        g.setLocalWork(localSize, 1, 1);
        return g;
    }

    private int roundUp(int count) { return Math.max(1, (count + localSize - 1) / localSize) * localSize; }

    /** A grid of {@code perRow} work-groups per row of the step, resized by {@link #run} to the step's rows. */
    private WorkerGrid1D rowGrid(WorkerGrid1D g, int perRow) {
        rowGrids.add(new RowGrid(g, perRow));
        return g;
    }

    private void resize(WorkerGrid1D g, long global) {
        g.setGlobalWork(global, 1, 1);
        g.setLocalWork(localSize, 1, 1);
    }

    /**
     * Attention splits of {@link Layout#CHUNK} slots the step's grids cover: enough for the most slots any head of
     * the step's sequences can hold (a head holds at most its sequence's tokens so far, and at most the slots).
     */
    int splitsFor(int maxPosition) { return Math.max(1, (Math.min(slots, maxPosition + 1) + CHUNK - 1) / CHUNK); }

    /**
     * Runs one forward step over the {@code n} rows already written into {@code step}/{@code stepF} (with
     * {@code step[SPLITS_NOW]}), its grids sized for those rows and splits, then reads the status words and the
     * picks back: the step's one device-to-host copy.
     */
    void run(int n, int splitsNow) {
        for (RowGrid rg : rowGrids) resize(rg.grid(), (long) n * rg.perRow() * localSize);
        resize(gPartial, (long) n * c.heads() * splitsNow * localSize);
        resize(gBegin, roundUp(n * c.dim()));
        TornadoExecutionResult r = plan.withGraph(0).execute();
        count(r);
        for (int l = 0; l < c.layers(); l++) {
            lastLayer = plan.withGraph(1).execute();
            count(lastLayer);
        }
        lastHead = plan.withGraph(2).execute();
        count(lastHead);
        lastHead.transferToHost(new DataRange(status).withSize(STATUS_SIZE + n));
        bytesOut += 4L * (STATUS_SIZE + n);
    }

    private void count(TornadoExecutionResult r) {
        if (!profile || r == null || r.getProfilerResult() == null) return;
        bytesIn += r.getProfilerResult().getTotalBytesCopyIn();
        bytesOut += r.getProfilerResult().getTotalBytesCopyOut();
        kernelNs += r.getProfilerResult().getDeviceKernelTime();
    }

    private long kernelNs;

    /** Switches TornadoVM's profiler on (silent) or off for the following steps. */
    void profiling(boolean on) {
        if (on == profile) return;
        profile = on;
        if (on) plan.withProfiler(ProfilerMode.SILENT);
        else plan.withoutProfiler();
    }

    /** Device kernel time the profiler saw so far (profiling on). */
    long kernelNanos() { return kernelNs; }

    /** Bytes the profiler saw copied host → device and device → host so far (profiling on), plus the explicit reads. */
    long bytesIn() { return bytesIn; }
    long bytesOut() { return bytesOut; }

    void fetchLogits(int fromRow, int rows) {
        int vocab = c.vocabSize();
        plan.withGraph(2);
        lastHead.transferToHost(new DataRange(logits).withOffset((long) fromRow * vocab).withSize((long) rows * vocab));
        bytesOut += 4L * rows * vocab;
    }

    // A result's on-demand copy goes to the plan's selected graph(s): select the layer graph first.
    void fetchHeadState() {
        if (lastLayer == null) return;
        plan.withGraph(1);
        lastLayer.transferToHost(headState);
    }

    void fetchLog() {
        if (lastLayer == null) return;
        plan.withGraph(1);
        lastLayer.transferToHost(log);
    }

    /** Device bytes of the KV cache of one sequence slot: key and value rows, their scales, slot metadata, the ring. */
    long kvBytesPerSequence() { return kvBytesPerSequence(c, slots, kvType, ringSize); }

    /** Entries of a head's delayed-eviction ring: the window's tokens plus one step's rows and one. */
    static int ringSize(int maxWindow, int maxRows) { return maxWindow + maxRows + 1; }

    /** The device memory one sequence's cache takes with {@code slots} rows per (layer, KV head). */
    static long kvBytesPerSequence(ModelConfig c, long slots, int kvType, int ringSize) {
        int hd = c.headDim(), kvBlocks = kvType == KV_Q8 ? (hd % 32 == 0 ? hd / 32 : 1) : 1;
        long rowBytes = kvType == KV_F32 ? 4L * hd : hd + 4L * kvBlocks;
        long perHead = slots * (2 * rowBytes + 8) + 4L * ringSize + 8;
        return perHead * c.layers() * c.kvHeads();
    }

    @Override
    public void close() {
        try {
            plan.freeDeviceMemory();
            plan.close();
        } catch (Exception e) {
            // freeing at exit: nothing useful to do with a failure
        }
    }
}
