package dev.fastdms.tornado;

import dev.fastdms.cache.DmsConfig;
import dev.fastdms.cache.DmsStep;
import dev.fastdms.cache.KvBudgetExceededException;
import dev.fastdms.cache.KvCacheView;
import dev.fastdms.cache.KvDtype;
import dev.fastdms.model.ContextOverflowException;
import dev.fastdms.model.DeviceProfile;
import dev.fastdms.model.ForwardPass;
import dev.fastdms.model.KvSettings;
import dev.fastdms.model.ModelConfig;
import dev.fastdms.model.Sequence;
import dev.fastdms.model.Transformer;
import dev.fastdms.model.Weights;
import uk.ac.manchester.tornado.api.common.TornadoDevice;

import static dev.fastdms.tornado.Layout.*;

/**
 * The forward pass on a TornadoVM device. The same layer recipe as the JVM {@link Transformer} (its twin kernels are
 * in {@link Kernels}), executed as the task graphs of {@link ForwardGraphs}; each sequence owns a slot of the
 * device-resident compacted cache, and DMS decisions, eviction and slot reuse all happen on the device.
 */
public final class TornadoForward implements ForwardPass, DeviceProfile {
    /** Sizing of the device state, fixed when the graphs are built. */
    public record Settings(int maxRows, int maxSequences, int kvSlots, int maxWindow, KvDtype kvDtype, boolean recordDecisions,
                           int localSize, boolean profile) {}

    private final String backend;
    private final ModelConfig c;
    private final ForwardGraphs g;
    private final Settings settings;
    private final DeviceSequence[] owner;
    private final DeviceWeights weights;
    private long steps;

    public TornadoForward(String backend, TornadoDevice device, ModelConfig c, Weights w, Settings s) {
        if (w.dmsAlpha != null) throw new IllegalArgumentException("DMS adapter checkpoints (dms_alpha tensors) run on the jvm backend only");
        if (s.maxRows() < 1 || s.maxSequences() < 1) throw new IllegalArgumentException("rows and sequences per step must be positive");
        int kvType = kvType(s.kvDtype(), backend);
        int slots = s.kvSlots() > 0 ? Math.min(s.kvSlots(), c.contextLength()) : c.contextLength();
        if (s.localSize() < 1 || s.localSize() > MAX_LOCAL || Integer.bitCount(s.localSize()) != 1) {
            throw new IllegalArgumentException("work-group size must be a power of two up to " + MAX_LOCAL);
        }
        this.backend = backend;
        this.c = c;
        this.settings = s;
        this.owner = new DeviceSequence[s.maxSequences()];
        this.weights = new DeviceWeights(c, w);
        this.g = new ForwardGraphs(c, weights, Transformer.ropeInverseFrequencies(c, w.ropeFreqFactors), s.maxRows(), s.maxSequences(),
                slots, Math.max(0, s.maxWindow()), kvType, s.recordDecisions(), device, s.localSize(), s.profile());
    }

    /**
     * The most KV slots per (sequence, layer, KV head), up to the context, that {@code maxSequences} sequences' device
     * caches can take within {@code budgetBytes} (--kv-budget on a device backend); 0 when not even one fits.
     */
    public static int slotsWithin(String backend, ModelConfig c, long budgetBytes, int maxSequences, KvDtype dtype, int maxWindow, int maxRows) {
        int kvType = kvType(dtype, backend), ring = ForwardGraphs.ringSize(Math.max(0, maxWindow), maxRows);
        long perSequence = budgetBytes / Math.max(1, maxSequences);
        int lo = 0, hi = c.contextLength();
        while (lo < hi) { // the per-sequence bytes grow with the slots: the largest count that fits
            int mid = (lo + hi + 1) >>> 1;
            if (ForwardGraphs.kvBytesPerSequence(c, mid, kvType, ring) <= perSequence) lo = mid; else hi = mid - 1;
        }
        return lo;
    }

    /** The device cache's element type for a --kv-dtype. */
    static int kvType(KvDtype dtype, String backend) {
        return switch (dtype) {
            case F32 -> KV_F32;
            case Q8 -> KV_Q8;
            case FP8_E4M3 -> KV_FP8;
            default -> throw new IllegalArgumentException("--kv-dtype " + dtype.name().toLowerCase()
                    + " is not available on the " + backend + " backend (f32, q8 or fp8; PoCL has no half precision)");
        };
    }

    @Override public ModelConfig config() { return c; }
    @Override public int maxRows() { return g.maxRows; }
    @Override public String backend() { return backend; }

    /** Conversions made while packing the weights (empty when none). */
    public String weightNotes() { return weights.notes(); }
    public long weightBytes() { return weights.bytes(); }
    public int kvSlots() { return g.slots; }
    /** Host→device and device→host bytes copied so far (needs profiling on), and forward steps run. */
    public long bytesIn() { return g.bytesIn(); }
    public long bytesOut() { return g.bytesOut(); }
    public long steps() { return steps; }
    ForwardGraphs graphs() { return g; }
    /** Kernel launches one forward step makes (the same for prefill and decode; grids follow the step's rows). */
    @Override public int launchesPerStep() { return g.launchesPerStep; }
    /** TornadoVM graph executions one forward step makes (1 when the whole step fits one graph). */
    @Override public int executionsPerStep() { return g.executionsPerStep(); }
    /** Device kernel nanoseconds so far (profiling on). */
    @Override public long kernelNanos() { return g.kernelNanos(); }
    @Override public void profiling(boolean on) { g.profiling(on); }


    @Override
    public Sequence newSequence(KvSettings kv) {
        if (kv.policy() != null) throw new IllegalArgumentException("training-free policies run on the jvm backend only");
        if (kv.dtype() != settings.kvDtype()) {
            throw new IllegalArgumentException("this device cache stores " + settings.kvDtype() + ", not " + kv.dtype());
        }
        if (kv.dms() != null && kv.dms().window() > settings.maxWindow()) {
            throw new IllegalArgumentException("DMS window " + kv.dms().window() + " exceeds the " + settings.maxWindow() + " the device cache was built for");
        }
        int slot = -1;
        for (int i = 0; i < owner.length; i++) {
            if (owner[i] == null) { slot = i; break; }
        }
        if (slot < 0) throw new IllegalStateException("all " + owner.length + " device sequence slots are in use (release one first)");
        DeviceCacheView view = new DeviceCacheView(slot);
        DeviceSequence s = new DeviceSequence(this, slot, kv.dms(), view);
        view.seq = s;
        owner[slot] = s;
        return s;
    }

    private DeviceSequence own(Sequence s) {
        if (!(s instanceof DeviceSequence d) || d.owner != this) {
            throw new IllegalArgumentException("this sequence does not belong to the " + backend + " backend");
        }
        if (d.released) throw new IllegalStateException("this sequence's device cache was released");
        return d;
    }

    @Override
    public int forwardArgmax(Sequence s, int[] tokens, int off, int len) {
        if (len < 1) throw new IllegalArgumentException("no tokens");
        checkContext(s, len);
        int lastRows = 0;
        for (int done = 0; done < len; done += lastRows) {
            lastRows = Math.min(g.maxRows, len - done);
            boolean last = done + lastRows == len;
            step(ForwardPass.rows(s, lastRows), java.util.Arrays.copyOfRange(tokens, off + done, off + done + lastRows), lastRows,
                    last ? LOGITS_LAST : LOGITS_NONE);
        }
        return g.status.get(PICKED + lastRows - 1);
    }

    /** One step over rows of different sequences (batched decode); returns each row's greedy pick, made on the device. */
    @Override
    public int[] forwardRowsArgmax(Sequence[] seqs, int[] tokens, int n) {
        step(seqs, tokens, n, LOGITS_ALL);
        int[] out = new int[n];
        for (int i = 0; i < n; i++) out[i] = g.status.get(PICKED + i);
        return out;
    }

    @Override
    public void forwardRows(Sequence[] seqs, int[] tokens, int n, float[] out, int outOff, boolean everyRow) {
        int mode = out == null ? LOGITS_NONE : everyRow ? LOGITS_ALL : LOGITS_LAST;
        step(seqs, tokens, n, mode);
        if (out == null) return;
        int vocab = c.vocabSize();
        int from = everyRow ? 0 : n - 1, rows = everyRow ? n : 1;
        g.fetchLogits(from, rows);
        for (int i = 0; i < rows * vocab; i++) out[outOff + i] = g.logits.get(from * vocab + i);
    }

    /** Writes the rows into the step arrays, runs the graphs, checks the device status, then advances the sequences. */
    private void step(Sequence[] seqs, int[] tokens, int n, int mode) {
        if (n < 1 || n > g.maxRows) throw new IllegalArgumentException("1.." + g.maxRows + " rows per step, got " + n);
        int R = g.maxRows;
        int[] pos = new int[n];
        int maxPos = 0;
        for (int i = 0; i < n; i++) {
            DeviceSequence s = own(seqs[i]);
            int slot = s.slot;
            int p = s.position();
            for (int j = i - 1; j >= 0 && seqs[j] == seqs[i]; j--) p++;
            if (i > 0 && seqs[i - 1] != seqs[i]) {
                for (int j = 0; j < i - 1; j++) if (seqs[j] == seqs[i]) throw new IllegalArgumentException("rows of one sequence must be contiguous");
            }
            if (p >= c.contextLength()) throw new ContextOverflowException("context overflow: position " + p + " reaches the context of " + c.contextLength());
            int tok = tokens[i];
            if (tok < 0 || tok >= c.vocabSize()) throw new IllegalArgumentException("token id " + tok + " outside the vocabulary of " + c.vocabSize());
            pos[i] = p;
            maxPos = Math.max(maxPos, p);
            g.step.set(TOKENS + i, tok);
            g.step.set(Layout.seqOff(R) + i, slot);
            g.step.set(Layout.posOff(R) + i, p);
            int pb = Layout.paramOff(R) + slot * SLOT_PARAMS;
            DmsConfig d = s.dms();
            g.step.set(pb + P_DMS, d == null ? 0 : 1);
            g.step.set(pb + P_WINDOW, d == null ? 0 : d.window());
            g.step.set(pb + P_NVIDIA, d != null && d.convention() == DmsConfig.Convention.NVIDIA ? 1 : 0);
            double forced = s.forcedEvictFraction();
            g.step.set(pb + P_FORCED, d != null && forced >= 0 ? 1 : 0);
            // the JVM's test "(hash >>> 11) * 2^-53 < f" is "(hash >>> 11) < ceil(f * 2^53)" on integers
            long thr = forced >= 0 ? (long) Math.ceil(Math.min(forced, 1.0) * 0x1p53) : 0;
            g.step.set(pb + P_THR_HI, (int) (thr >>> 32));
            g.step.set(pb + P_THR_LO, (int) thr);
            g.stepF.set(slot * SLOT_FPARAMS + F_SCALE, d == null ? 0f : d.alphaScale());
            g.stepF.set(slot * SLOT_FPARAMS + F_OFFSET, d == null ? 0f : d.alphaOffset());
        }
        g.step.set(N_ROWS, n);
        g.step.set(LOGITS_MODE, mode);
        int splitsNow = g.splitsFor(maxPos);
        g.step.set(SPLITS_NOW, splitsNow);
        g.run(n, splitsNow);
        steps++;
        // the device caches may have changed even when the step failed: read them back next time
        for (int i = 0; i < n; i++) ((DeviceSequence) seqs[i]).stale = true;
        if (g.status.get(STATUS_BAD_INPUT) != 0) throw new IllegalStateException("the device rejected the step's input (rows, token ids or DMS parameters)");
        if (g.status.get(STATUS_NAN) != 0) throw new IllegalStateException("the model produced NaN logits on the device");
        if (g.status.get(STATUS_FULL) != 0) {
            int head = g.status.get(STATUS_FULL_HEAD);
            int perSeq = c.layers() * c.kvHeads();
            int local = head % perSeq;
            throw new KvBudgetExceededException("the device KV cache is full: layer " + local / c.kvHeads() + " KV head " + local % c.kvHeads()
                    + " holds all " + g.slots + " slots (raise --kv-slots)");
        }
        // only a step the device accepted moves the sequences on
        for (int i = 0; i < n; i++) {
            if (i + 1 < n && seqs[i + 1] == seqs[i]) continue;
            int rows = 1;
            for (int j = i - 1; j >= 0 && seqs[j] == seqs[i]; j--) rows++;
            ((DeviceSequence) seqs[i]).advance(rows);
        }
        if (g.logDecisions) reportDecisions(seqs, n, pos);
    }

    private void reportDecisions(Sequence[] seqs, int n, int[] pos) {
        boolean any = false;
        for (int i = 0; i < n; i++) any |= seqs[i].observer() != null && seqs[i].dms() != null;
        if (!any) return;
        g.fetchLog();
        int L = c.layers(), kvh = c.kvHeads();
        for (int i = 0; i < n; i++) {
            Sequence s = seqs[i];
            if (s.observer() == null || s.dms() == null) continue;
            int decided = DmsStep.decidedPosition(s.dms(), pos[i]);
            if (decided < 0) continue;
            int slot = own(s).slot;
            for (int l = 0; l < L; l++) {
                for (int h = 0; h < kvh; h++) {
                    byte b = g.log.get(((slot * L + l) * kvh + h) * g.logCtx + decided);
                    if (b != 0) s.observer().decided(l, h, decided, b == 2);
                }
            }
        }
    }

    @Override
    public void close() { g.close(); }

    /** A sequence's device cache as the engine reports it; live counts are read back from the device on demand. */
    private final class DeviceCacheView implements KvCacheView {
        final int slot;
        DeviceSequence seq;

        DeviceCacheView(int slot) { this.slot = slot; }

        @Override public int layers() { return c.layers(); }
        @Override public int kvHeads() { return c.kvHeads(); }
        @Override public int headDim() { return c.headDim(); }

        @Override
        public int live(int layer, int kvHead) {
            if (seq.position() == 0) return 0;
            if (seq.stale) {
                g.fetchHeadState();
                for (DeviceSequence s : owner) if (s != null) s.stale = false;
            }
            return g.headState.get(2 * ((slot * c.layers() + layer) * c.kvHeads() + kvHead));
        }

        @Override public long seenTokens() { return seq.position(); }

        /** The device memory this sequence's cache slot reserves (rows of --kv-slots per head, scales, metadata). */
        @Override public long bytesAllocated() { return seq.released ? 0 : g.kvBytesPerSequence(); }

        @Override
        public void release() {
            if (seq.released) return;
            seq.released = true;
            owner[slot] = null;
        }
    }
}
