package dev.fastdms.tornado;

import dev.fastdms.model.ModelConfig;
import uk.ac.manchester.tornado.api.DataRange;
import uk.ac.manchester.tornado.api.GridScheduler;
import uk.ac.manchester.tornado.api.ImmutableTaskGraph;
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
 * the task graph(s) of a forward step, built once and reused for every step.
 *
 * <p>One graph holds the whole step when it fits TornadoVM's per-graph task buffer ({@link #MAX_TASKS_PER_GRAPH}):
 * the input check + embedding lookup ({@code begin}: the step's rows come in, the only host-to-device copy of a
 * step, and the layer counter is rewound), then every layer's tasks ({@code l<layer>_<kernel>}; the kernels index
 * every weight and cache array with the device-side layer counter, which the FFN's kernels move on, see
 * {@link Layout#LAYER_NEXT}), then the head (final norm + logits, the greedy pick; only the picked ids and the status
 * words come back, and the logits when asked for). A model with more layers than one graph holds (the 1B shape: 16
 * layers of 7 tasks) splits its layers evenly over the fewest graphs that fit ({@link #split}), which hand the
 * residual stream, the step's rows, the weights and the cache on to each other on the device
 * ({@code persistOnDevice} / {@code consumeFromDevice}). Weights and the cache are copied to the device on the first
 * execution and never again.
 */
final class ForwardGraphs implements AutoCloseable {
    static { Devices.init(); }

    final ModelConfig c;
    final int maxRows, maxSeqs, slots, ringSize, kvType, splits, kvBlocks, logCtx, localSize;
    final boolean logDecisions;

    final IntArray cfg, step, ctrl, status, headState, slotMeta, ring;
    final FloatArray cfgF, stepF, lut, x, xb, q, k, v, att, hb, hb2, part, logits;
    final FloatArray kF, vF, kS, vS;
    final ByteArray kB, vB, log;
    private final DeviceWeights w;
    private final TornadoExecutionPlan plan;
    private TornadoExecutionResult last;
    private long bytesIn, bytesOut;
    private boolean profile;
    private final GridScheduler grid = new GridScheduler();
    private int launchesPerStepCount;
    /** Kernel launches (tasks executed) in one forward step: the step's task, every layer's, the head's. */
    final int launchesPerStep;
    /** The graphs of a step, executed in order, and the layers each holds. */
    private final String[] names;
    final int[] layerSplit;
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

        // ---- the graphs: the step's input check + embedding, every layer (tasks named l<layer>_<kernel>), the head,
        // in as few graphs as TornadoVM holds (one for stories260K; see GRAPH_CODE_BYTES)
        boolean fusedQkv = w.wq.kind() == w.wk.kind() && w.wk.kind() == w.wv.kind(), fusedFfn = w.gate.kind() == w.up.kind();
        int perLayer = (fusedQkv ? 1 : 4) + (c.qkNorm() ? 2 : 0) + 4 + (fusedFfn ? 1 : 4) + 1;
        layerSplit = split(c.layers(), perLayer, 1, 2, layersPerGraphCap > 0 ? layersPerGraphCap : Integer.MAX_VALUE);
        int G = layerSplit.length;
        names = new String[G];
        for (int i = 0; i < G; i++) names[i] = G == 1 ? "forward" : "forward" + i;
        // what the layer tasks use: uploaded by the first graph, handed on from graph to graph on the device
        java.util.List<Object> chain = new java.util.ArrayList<>(java.util.List.of(step, stepF, cfg, cfgF, ctrl, status, lut, x,
                w.wq.data(), w.wk.data(), w.wv.data(), w.wo.data(), w.gate.data(), w.up.data(), w.down.data(), w.attnNorm, w.ffnNorm));
        if (c.qkNorm()) chain.addAll(java.util.List.of(w.qNorm, w.kNorm));
        if (!fusedQkv || !fusedFfn) chain.add(xb);
        if (!fusedFfn) chain.add(hb2);
        chain.addAll(java.util.List.of(q, k, v, att, hb, part, headState, slotMeta, ring, kF, vF, kB, vB, kS, vS, log));
        Object[] handOn = chain.toArray();
        if (w.tiedOutput) chain.add(w.embedding.data()); // the head's logits read it
        Object[] handOnTied = chain.toArray();

        KernelContext kc = new KernelContext();
        LayerGrids lg = new LayerGrids(c, fusedQkv, fusedFfn);
        TaskGraph[] graphs = new TaskGraph[G];
        int layer = 0;
        for (int gi = 0; gi < G; gi++) {
            String gn = names[gi];
            TaskGraph g = new TaskGraph(gn);
            int before = launchesPerStepCount;
            if (gi == 0) {
                g.transferToDevice(DataTransferMode.EVERY_EXECUTION, step, stepF)
                        .transferToDevice(DataTransferMode.FIRST_EXECUTION, cfg, cfgF, ctrl, status, lut, w.embedding.data(), x);
                g.transferToDevice(DataTransferMode.FIRST_EXECUTION, java.util.Arrays.copyOfRange(handOn, 8, handOn.length));
                // one kernel: thread 0 checks the input and rewinds the layer counter, every thread embeds an element
                switch (w.embedding.kind()) {
                    case F32 -> g.task("begin", Kernels::beginEmbedF32, kc, (FloatArray) w.embedding.data(), lut, x, step, stepF, cfg, cfgF, ctrl, status);
                    case F16, BF16 -> g.task("begin", Kernels::beginEmbedF16, kc, (ShortArray) w.embedding.data(), lut, x, step, stepF, cfg, cfgF, ctrl, status,
                            w.embedding.kind() == DeviceWeights.Kind.BF16 ? 1 : 0);
                    case Q8_0 -> g.task("begin", Kernels::beginEmbedQ8, kc, (ByteArray) w.embedding.data(), lut, x, step, stepF, cfg, cfgF, ctrl, status);
                    case Q4_0 -> g.task("begin", Kernels::beginEmbedQ4, kc, (ByteArray) w.embedding.data(), lut, x, step, stepF, cfg, cfgF, ctrl, status);
                }
                gBegin = flat(maxRows * c.dim());
                grid(gn + ".begin", gBegin);
            } else {
                g.consumeFromDevice(names[gi - 1], handOnTied);
            }
            for (int l = 0; l < layerSplit[gi]; l++, layer++) addLayer(g, gn, "l" + layer + "_", lg, fusedQkv, fusedFfn, kc);
            if (gi == G - 1) {
                int dim = c.dim(), vocab = c.vocabSize();
                if (!w.tiedOutput) g.transferToDevice(DataTransferMode.FIRST_EXECUTION, w.output.data());
                g.transferToDevice(DataTransferMode.FIRST_EXECUTION, w.outputNorm, logits);
                switch (w.output.kind()) { // the final norm + logits in one kernel
                    case F32 -> g.task("logits", Kernels::logitsF32, kc, (FloatArray) w.output.data(), x, w.outputNorm, cfgF, logits, step, vocab, dim);
                    case F16, BF16 -> g.task("logits", Kernels::logitsF16, kc, (ShortArray) w.output.data(), lut, x, w.outputNorm, cfgF, logits, step, vocab, dim,
                            w.output.kind() == DeviceWeights.Kind.BF16 ? 1 : 0);
                    case Q8_0 -> g.task("logits", Kernels::logitsQ8, kc, (ByteArray) w.output.data(), lut, x, w.outputNorm, cfgF, logits, step, vocab, dim);
                    case Q4_0 -> g.task("logits", Kernels::logitsQ4, kc, (ByteArray) w.output.data(), lut, x, w.outputNorm, cfgF, logits, step, vocab, dim);
                }
                grid(gn + ".logits", groups(vocab));
                g.task("argmax", Kernels::argmax, kc, logits, step, cfg, status);
                grid(gn + ".argmax", rowGrid(groups(maxRows), 1));
                g.transferToHost(DataTransferMode.UNDER_DEMAND, logits, status, headState, log);
            } else {
                g.persistOnDevice(handOnTied);
            }
            if (launchesPerStepCount - before > MAX_TASKS_PER_GRAPH) throw new IllegalStateException("graph " + gn + " has more tasks than TornadoVM holds");
            graphs[gi] = g;
        }
        launchesPerStep = launchesPerStepCount;

        ImmutableTaskGraph[] snaps = new ImmutableTaskGraph[G];
        for (int i = 0; i < G; i++) snaps[i] = graphs[i].snapshot();
        plan = new TornadoExecutionPlan(snaps);
        plan.withGridScheduler(grid);
        if (device != null) plan.withDevice(device);
        if (profile) plan.withProfiler(ProfilerMode.SILENT);
    }

    /**
     * TornadoVM 5.2.1 writes every task of a graph into the graph's high-level code, a fixed 8 KB buffer
     * ({@code TornadoTaskGraph.highLevelCode = new byte[8192]}, no property changes it): 15 bytes plus 5 per argument,
     * and a task takes at most 20 arguments, so 71 tasks always fit. The TornadoVM bytecode a graph compiles to at its
     * first execution is a second buffer, sized by {@code tornado.tvm.maxbytecodesize} (4 KB by default: too small
     * for one graph of the whole step; see {@link Devices}). {@code GraphLimitsOnDeviceTest} checks both.
     */
    static final int GRAPH_CODE_BYTES = 8192, TASK_CODE_BYTES_MAX = 15 + 5 * 20, MAX_TASKS_PER_GRAPH = GRAPH_CODE_BYTES / TASK_CODE_BYTES_MAX;

    /**
     * Layers per graph: the fewest graphs (layers split evenly, the first graph also holding the step's task, the last
     * the head's) whose tasks fit {@link #MAX_TASKS_PER_GRAPH}, with at most {@code cap} layers each.
     */
    static int[] split(int layers, int perLayer, int stepTasks, int headTasks, int cap) {
        for (int graphs = 1; graphs <= layers; graphs++) {
            int[] s = new int[graphs];
            boolean ok = true;
            for (int i = 0; i < graphs; i++) {
                s[i] = layers / graphs + (i < layers % graphs ? 1 : 0);
                int tasks = s[i] * perLayer + (i == 0 ? stepTasks : 0) + (i == graphs - 1 ? headTasks : 0);
                ok &= tasks <= MAX_TASKS_PER_GRAPH && s[i] <= cap;
            }
            if (ok) return s;
        }
        throw new IllegalArgumentException("a layer of " + perLayer + " tasks does not fit one TornadoVM task graph");
    }

    /** Test hook: at most this many layers per graph (0: as many as fit), to exercise the hand-over between graphs. */
    static volatile int layersPerGraphCap;

    /** The worker grids of the layer tasks, shared by every layer (one object per kind, resized every step). */
    private final class LayerGrids {
        final WorkerGrid1D qkv, norm, qNorm, kNorm, rope, combine, wo, gateUp, swiglu;

        LayerGrids(ModelConfig c, boolean fusedQkv, boolean fusedFfn) {
            qkv = groups(c.qDim() + c.kvDim());
            norm = fusedQkv && fusedFfn ? null : rowGrid(groups(maxRows), 1);
            qNorm = c.qkNorm() ? rowGrid(groups(maxRows * c.heads()), c.heads()) : null;
            kNorm = c.qkNorm() ? rowGrid(groups(maxRows * c.kvHeads()), c.kvHeads()) : null;
            rope = rowGrid(groups(maxRows * c.kvHeads()), c.kvHeads());
            gPartial = groups(maxRows * c.heads() * splits);
            combine = rowGrid(groups(maxRows * c.heads()), c.heads());
            wo = groups(c.dim());
            gateUp = groups(c.ffnDim());
            swiglu = fusedFfn ? null : flat(maxRows * c.ffnDim());
        }
    }

    /** One transformer layer's tasks; the kernels read the layer from the device-side counter (see {@link Layout#LAYER_NEXT}). */
    private void addLayer(TaskGraph g, String gn, String p, LayerGrids lg, boolean fusedQkv, boolean fusedFfn, KernelContext kc) {
        int dim = c.dim(), qDim = c.qDim(), kvDim = c.kvDim(), ffn = c.ffnDim();
        if (fusedQkv) { // attention norm + q, k, v in one kernel
            switch (w.wq.kind()) {
                case F32 -> g.task(p + "qkv", Kernels::qkvNormF32, kc, (FloatArray) w.wq.data(), (FloatArray) w.wk.data(), (FloatArray) w.wv.data(),
                        x, w.attnNorm, cfgF, q, k, v, step, ctrl, qDim, kvDim, dim);
                case F16, BF16 -> g.task(p + "qkv", Kernels::qkvNormF16, kc, (ShortArray) w.wq.data(), (ShortArray) w.wk.data(), (ShortArray) w.wv.data(),
                        lut, x, w.attnNorm, cfgF, q, k, v, step, ctrl, qDim, kvDim, dim, w.wq.kind() == DeviceWeights.Kind.BF16 ? 1 : 0);
                case Q8_0 -> g.task(p + "qkv", Kernels::qkvNormQ8, kc, (ByteArray) w.wq.data(), (ByteArray) w.wk.data(), (ByteArray) w.wv.data(),
                        lut, x, w.attnNorm, cfgF, q, k, v, step, ctrl, qDim, kvDim, dim);
                case Q4_0 -> g.task(p + "qkv", Kernels::qkvNormQ4, kc, (ByteArray) w.wq.data(), (ByteArray) w.wk.data(), (ByteArray) w.wv.data(),
                        lut, x, w.attnNorm, cfgF, q, k, v, step, ctrl, qDim, kvDim, dim);
            }
            grid(gn + "." + p + "qkv", lg.qkv);
        } else { // mixed-type files: the norm, then three products
            g.task(p + "attnNorm", Kernels::rmsnorm, kc, x, xb, w.attnNorm, step, cfg, cfgF, ctrl, 1, 0);
            grid(gn + "." + p + "attnNorm", lg.norm);
            matmul(g, gn, p + "wq", w.wq, xb, q, qDim, dim, 1, false, false, kc);
            matmul(g, gn, p + "wk", w.wk, xb, k, kvDim, dim, 1, false, false, kc);
            matmul(g, gn, p + "wv", w.wv, xb, v, kvDim, dim, 1, false, false, kc);
        }
        if (c.qkNorm()) {
            g.task(p + "qNorm", Kernels::headNorm, kc, q, w.qNorm, step, cfg, cfgF, ctrl, c.heads());
            grid(gn + "." + p + "qNorm", lg.qNorm);
            g.task(p + "kNorm", Kernels::headNorm, kc, k, w.kNorm, step, cfg, cfgF, ctrl, c.kvHeads());
            grid(gn + "." + p + "kNorm", lg.kNorm);
        }
        g.task(p + "ropeAppend", Kernels::ropeAppend, kc, q, k, v, step, stepF, cfg, ctrl, log, headState, slotMeta, ring, kF, vF, kB, vB, kS, vS, lut, status);
        grid(gn + "." + p + "ropeAppend", lg.rope);
        g.task(p + "attnPartial", Kernels::attnPartial, kc, q, step, cfg, cfgF, ctrl, headState, slotMeta, kF, vF, kB, vB, kS, vS, lut, part);
        grid(gn + "." + p + "attnPartial", gPartial);
        g.task(p + "attnCombine", Kernels::attnCombine, kc, part, att, step, cfg, ctrl, headState);
        grid(gn + "." + p + "attnCombine", lg.combine);
        // the output projection + residual, with the end-of-step reclaim in its threads
        switch (w.wo.kind()) {
            case F32 -> g.task(p + "wo", Kernels::outProjF32, kc, (FloatArray) w.wo.data(), att, x, step, cfg, ctrl, headState, slotMeta, ring, kF, vF, kB, vB, kS, vS);
            case F16, BF16 -> g.task(p + "wo", Kernels::outProjF16, kc, (ShortArray) w.wo.data(), lut, att, x, step, cfg, ctrl, headState, slotMeta, ring,
                    kF, vF, kB, vB, kS, vS, w.wo.kind() == DeviceWeights.Kind.BF16 ? 1 : 0);
            case Q8_0 -> g.task(p + "wo", Kernels::outProjQ8, kc, (ByteArray) w.wo.data(), lut, att, x, step, cfg, ctrl, headState, slotMeta, ring, kF, vF, kB, vB, kS, vS);
            case Q4_0 -> g.task(p + "wo", Kernels::outProjQ4, kc, (ByteArray) w.wo.data(), lut, att, x, step, cfg, ctrl, headState, slotMeta, ring, kF, vF, kB, vB, kS, vS);
        }
        grid(gn + "." + p + "wo", lg.wo);
        if (fusedFfn) { // FFN norm + gate + up + SwiGLU in one kernel
            switch (w.gate.kind()) {
                case F32 -> g.task(p + "gateUp", Kernels::gateUpNormF32, kc, (FloatArray) w.gate.data(), (FloatArray) w.up.data(), x, w.ffnNorm, cfgF, hb, step, ctrl, ffn, dim);
                case F16, BF16 -> g.task(p + "gateUp", Kernels::gateUpNormF16, kc, (ShortArray) w.gate.data(), (ShortArray) w.up.data(), lut, x, w.ffnNorm, cfgF, hb,
                        step, ctrl, ffn, dim, w.gate.kind() == DeviceWeights.Kind.BF16 ? 1 : 0);
                case Q8_0 -> g.task(p + "gateUp", Kernels::gateUpNormQ8, kc, (ByteArray) w.gate.data(), (ByteArray) w.up.data(), lut, x, w.ffnNorm, cfgF, hb, step, ctrl, ffn, dim);
                case Q4_0 -> g.task(p + "gateUp", Kernels::gateUpNormQ4, kc, (ByteArray) w.gate.data(), (ByteArray) w.up.data(), lut, x, w.ffnNorm, cfgF, hb, step, ctrl, ffn, dim);
            }
            grid(gn + "." + p + "gateUp", lg.gateUp);
        } else { // mixed-type files: the norm, two products, then SwiGLU
            g.task(p + "ffnNorm", Kernels::rmsnorm, kc, x, xb, w.ffnNorm, step, cfg, cfgF, ctrl, 1, 0);
            grid(gn + "." + p + "ffnNorm", lg.norm);
            matmul(g, gn, p + "gate", w.gate, xb, hb, ffn, dim, 1, false, false, kc);
            matmul(g, gn, p + "up", w.up, xb, hb2, ffn, dim, 1, false, false, kc);
            g.task(p + "swiglu", Kernels::swiglu, kc, hb, hb2, step, cfg, ctrl);
            grid(gn + "." + p + "swiglu", lg.swiglu);
        }
        matmul(g, gn, p + "down", w.down, hb, x, dim, ffn, 2, true, false, kc);
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
        launchesPerStepCount++;
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
        for (int i = 0; i < names.length; i++) {
            last = names.length == 1 ? plan.execute() : plan.withGraph(i).execute();
            count(last);
        }
        last.transferToHost(new DataRange(status).withSize(STATUS_SIZE + n));
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
        select();
        last.transferToHost(new DataRange(logits).withOffset((long) fromRow * vocab).withSize((long) rows * vocab));
        bytesOut += 4L * rows * vocab;
    }

    // A result's on-demand copy goes to the plan's selected graph(s): the last graph, which declares these copies.
    private void select() { if (names.length > 1) plan.withGraph(names.length - 1); }

    void fetchHeadState() {
        if (last == null) return;
        select();
        last.transferToHost(headState);
    }

    void fetchLog() {
        if (last == null) return;
        select();
        last.transferToHost(log);
    }

    /** Graph executions in one forward step. */
    int executionsPerStep() { return names.length; }

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
