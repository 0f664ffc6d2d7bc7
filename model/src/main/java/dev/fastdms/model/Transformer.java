package dev.fastdms.model;

import dev.fastdms.cache.CompactKvCache;
import dev.fastdms.cache.DmsStep;
import dev.fastdms.cache.EvictionPolicy;
import dev.fastdms.cache.HeadKv;
import dev.fastdms.cache.KvDtype;
import dev.fastdms.model.tensor.FloatTensor;
import dev.fastdms.model.tensor.Activations;
import dev.fastdms.model.tensor.DecodeLayout;
import dev.fastdms.model.tensor.Parallel;

import java.util.Arrays;

/**
 * The Llama / Qwen3 forward pass on the JVM (the reference backend). Work is done on a batch of rows, each row one
 * token of some sequence at some position: a prompt chunk of one sequence (prefill: weights read once for the whole
 * chunk) or one token each of several sequences (batched decode). Every row's key and value go into its sequence's
 * compacted per-head cache, and attention reads that cache under the sequence's DMS rule.
 *
 * <p>Per layer: RMSNorm → Q,K,V → (Qwen3 q/k RMSNorm) → DMS decision from the borrowed channel q[d-1] of the first
 * query head of each KV group, which is then zeroed → RoPE → zero again → append K,V → attention → output projection
 * → residual → RMSNorm → SwiGLU FFN → residual. Then the final norm and logits.
 *
 * <p>Not thread-safe: one forward at a time (its activation buffers are reused).
 */
public final class Transformer implements ForwardPass {
    private final ModelConfig c;
    private final Weights w;
    private final int maxRows;
    private final float[] invFreq; // per rotation pair, after llama3 scaling
    // activations, [row][...]
    private final float[] x, xb, q, k, v, att, hb, hb2, ropeCos, ropeSin;
    private final JvmSequence[] rowSeq;
    private final int[] rowPos;
    private final ThreadLocal<float[]> scratch = ThreadLocal.withInitial(() -> new float[256]);
    /** Each layer's matrices as stored (memory-mapped): prefill chunks and batches of 16 rows or more multiply them. */
    private final LayerMatrices[] stored;
    /**
     * Each layer's matrices as single-row decode multiplies them (see DecodeLayout: long rows in column panels,
     * Q4_0 and k-quant blocks re-laid), made by {@link #prepareDecode} or else on the layer's first single-row step:
     * commands that never decode one row (eval, batched bench) do not copy them.
     */
    private final LayerMatrices[] decode;
    /**
     * What a step of 2 to 15 rows multiplies, made with {@link #decode}: each decode copy that batches rows as it
     * multiplies one (its integer kernels: a sequence decoded in a batch gets the bits it gets alone), else the stored
     * matrix. Until the copies exist (eval makes none; they are not worth making for one short step), the stored ones.
     */
    private final LayerMatrices[] fewRows;
    private FloatTensor decodeOutput;

    private record LayerMatrices(FloatTensor wq, FloatTensor wk, FloatTensor wv, FloatTensor wo, FloatTensor gate, FloatTensor up, FloatTensor down) {
        static LayerMatrices of(FloatTensor[] m) { return new LayerMatrices(m[0], m[1], m[2], m[3], m[4], m[5], m[6]); }

        FloatTensor[] all() { return new FloatTensor[]{wq, wk, wv, wo, gate, up, down}; }
    }

    public Transformer(ModelConfig config, Weights weights, int maxRows) {
        this.c = config;
        this.w = weights;
        this.maxRows = maxRows;
        decode = new LayerMatrices[c.layers()];
        fewRows = new LayerMatrices[c.layers()];
        stored = new LayerMatrices[c.layers()];
        for (int l = 0; l < c.layers(); l++) stored[l] = LayerMatrices.of(Arrays.stream(layerMatrices(l)).map(Matrix::t).toArray(FloatTensor[]::new));
        int half = c.headDim() / 2;
        invFreq = ropeInverseFrequencies(c, weights.ropeFreqFactors);
        x = new float[maxRows * c.dim()];
        xb = new float[maxRows * Math.max(c.dim(), c.qDim())];
        q = new float[maxRows * c.qDim()];
        k = new float[maxRows * c.kvDim()];
        v = new float[maxRows * c.kvDim()];
        att = new float[maxRows * c.qDim()];
        hb = new float[maxRows * c.ffnDim()];
        hb2 = new float[maxRows * c.ffnDim()];
        ropeCos = new float[maxRows * half];
        ropeSin = new float[maxRows * half];
        rowSeq = new JvmSequence[maxRows];
        adapterIn = new float[c.dim()];
        rowPos = new int[maxRows];
    }

    @Override public ModelConfig config() { return c; }
    public Weights weights() { return w; }
    @Override public int maxRows() { return maxRows; }
    @Override public String backend() { return "jvm"; }

    @Override
    public Sequence newSequence(KvSettings kv) {
        if (kv.dms() != null && kv.policy() != null) throw new IllegalArgumentException("DMS and a training-free policy cannot be combined");
        int window = kv.dms() == null ? 0 : kv.dms().window();
        CompactKvCache cache = new CompactKvCache(c.layers(), c.kvHeads(), c.headDim(), kv.dtype(), window,
                CompactKvCache.DEFAULT_BLOCK_TOKENS, kv.budget());
        return new JvmSequence(cache, kv.dms(), kv.policy() == null ? null : new EvictionPolicy(kv.policy()));
    }

    /**
     * Feeds {@code len} tokens of one sequence at its next positions, in chunks of {@link #maxRows()}.
     *
     * @param logits receives the logits of every token ([len][vocab]) when {@code allLogits}, else of the last token
     *               ([vocab]); may be null when no logits are wanted (prefill of a prompt prefix)
     */
    @Override
    public void forward(Sequence seq, int[] tokens, int off, int len, float[] logits, boolean allLogits, ProgressListener progress) {
        checkContext(seq, len);
        JvmSequence s = JvmSequence.of(seq);
        if (s.policy != null && s.promptEnd < 0) {
            s.promptEnd = s.position + len;
            for (int l = 0; l < c.layers(); l++) for (int g = 0; g < c.kvHeads(); g++) s.policy.prepare(s.cache.head(l, g), s.promptEnd);
        }
        ForwardPass.super.forward(seq, tokens, off, len, logits, allLogits, progress);
    }

    /**
     * One step over {@code n} rows: row i is token {@code tokens[i]} of sequence {@code seqs[i]} at that sequence's
     * next position. Rows of the same sequence must be contiguous, in position order. Logits: of every row into
     * out[outOff + i*vocab] when {@code everyRow}, else of the last row only into out[outOff ..].
     */
    @Override
    public void forwardRows(Sequence[] seqs, int[] tokens, int n, float[] out, int outOff, boolean everyRow) {
        if (n > maxRows) throw new IllegalArgumentException("at most " + maxRows + " rows per step");
        int dim = c.dim(), half = c.headDim() / 2;
        for (int i = 0; i < n; i++) {
            JvmSequence s = JvmSequence.of(seqs[i]);
            if (s.position >= c.contextLength()) throw new ContextOverflowException("context overflow: position " + s.position + " reaches the context of " + c.contextLength());
            rowSeq[i] = s;
            rowPos[i] = s.position++;
            int tok = tokens[i];
            if (tok < 0 || tok >= c.vocabSize()) throw new IllegalArgumentException("token id " + tok + " outside the vocabulary of " + c.vocabSize());
            w.tokenEmbedding.copyTo((long) tok * dim, x, i * dim, dim);
            for (int j = 0; j < half; j++) {
                double angle = rowPos[i] * (double) invFreq[j];
                ropeCos[i * half + j] = (float) Math.cos(angle);
                ropeSin[i * half + j] = (float) Math.sin(angle);
            }
        }
        // Each layer's two halves are methods of their own: C2 compiles them apart (this method was compiled five
        // times over, at 1,681 bytes, once per loop it was entered in and again when decode took its one-row branches).
        for (int l = 0; l < c.layers(); l++) {
            attentionBlock(l, n);
            ffnBlock(l, n);
        }
        if (out == null) return;
        int vocab = c.vocabSize();
        if (everyRow) {
            rmsnormRows(xb, x, w.outputNorm, n, dim);
            FloatTensor output = n < FloatTensor.GEMM_ROWS ? few(decodeOutput, w.output) : w.output;
            if (outOff == 0) {
                output.matmul(xb, dim, out, vocab, n, vocab, dim);
            } else {
                if (logitsTmp.length < n * vocab) logitsTmp = new float[maxRows * vocab];
                output.matmul(xb, dim, logitsTmp, vocab, n, vocab, dim);
                System.arraycopy(logitsTmp, 0, out, outOff, n * vocab);
            }
        } else {
            rmsnorm(xb, 0, x, (n - 1) * dim, w.outputNorm, dim);
            decodeOutput().matvec(xb, 0, out, outOff, vocab, dim);
        }
    }

    /** Attention half of layer {@code l} over the step's {@code n} rows: x += o(attention(norm(x))). */
    private void attentionBlock(int l, int n) {
        int hd = c.headDim(), qDim = c.qDim(), kvDim = c.kvDim(), dim = c.dim();
        rmsnormRows(xb, x, w.attnNorm[l], n, dim);
        LayerMatrices m = matrices(l, n);
        if (n == 1) FloatTensor.matvec3(xb, dim, m.wq, q, qDim, m.wk, k, kvDim, m.wv, v, kvDim);
        else {
            m.wq.matmul(xb, dim, q, qDim, n, qDim, dim);
            m.wk.matmul(xb, dim, k, kvDim, n, kvDim, dim);
            m.wv.matmul(xb, dim, v, kvDim, n, kvDim, dim);
        }
        if (c.qkNorm()) {
            for (int i = 0; i < n * c.heads(); i++) rmsnorm(q, i * hd, q, i * hd, w.qNorm[l], hd);
            for (int i = 0; i < n * c.kvHeads(); i++) rmsnorm(k, i * hd, k, i * hd, w.kNorm[l], hd);
        }
        dmsDecideAndZero(l, n, true);
        for (int i = 0; i < n; i++) {
            for (int h = 0; h < c.heads(); h++) rope(q, i * qDim + h * hd, i);
            for (int h = 0; h < c.kvHeads(); h++) rope(k, i * kvDim + h * hd, i);
        }
        dmsDecideAndZero(l, n, false);
        // Cache writes happen in row order (positions must be appended in order per head).
        for (int i = 0; i < n; i++) {
            JvmSequence s = rowSeq[i];
            boolean firstRowOfSeq = i == 0 || rowSeq[i - 1] != s;
            for (int g = 0; g < c.kvHeads(); g++) {
                DmsStep.append(s.cache.head(l, g), s.dms, pendingEvict[i * c.kvHeads() + g], firstRowOfSeq, rowPos[i],
                        k, i * kvDim + g * hd, v, i * kvDim + g * hd);
            }
        }
        int group = c.groupSize();
        float scale = (float) (1.0 / Math.sqrt(hd));
        // One thread per KV head (rows inner): a head's per-slot statistics are updated by one thread only.
        Parallel.forRange(c.kvHeads(), 1, (lo, hi) -> {
            for (int g = lo; g < hi; g++) {
                for (int i = 0; i < n; i++) {
                    HeadKv head = rowSeq[i].cache.head(l, g);
                    float[] sc = scratch.get();
                    int need = head.scratchSize(group);
                    if (sc.length < need) { sc = new float[Math.max(need, sc.length * 2)]; scratch.set(sc); }
                    head.attend(q, i * qDim + g * group * hd, group, rowPos[i], scale, att, i * qDim + g * group * hd, sc);
                }
            }
        });
        // Training-free policies evict after the step, once per sequence.
        for (int i = 0; i < n; i++) {
            JvmSequence s = rowSeq[i];
            if (s.policy == null || (i + 1 < n && rowSeq[i + 1] == s)) continue;
            for (int g = 0; g < c.kvHeads(); g++) s.policy.enforce(s.cache.head(l, g), rowPos[i] + 1, s.promptEnd);
        }
        for (int i = 0; i < n; i++) {
            JvmSequence s = rowSeq[i];
            if (i + 1 < n && rowSeq[i + 1] == s) continue;
            for (int g = 0; g < c.kvHeads(); g++) DmsStep.endStep(s.cache.head(l, g), s.dms, rowPos[i]);
        }
        m.wo.matmul(att, qDim, xb, dim, n, dim, qDim);
        for (int i = 0; i < n * dim; i++) x[i] += xb[i];
    }

    /** Feed-forward half of layer {@code l}: x += down(SwiGLU(gate(norm(x)), up(norm(x)))). */
    private void ffnBlock(int l, int n) {
        int dim = c.dim(), ffn = c.ffnDim();
        LayerMatrices m = matrices(l, n);
        rmsnormRows(xb, x, w.ffnNorm[l], n, dim);
        if (n == 1) FloatTensor.matvec2(xb, dim, m.gate, hb, ffn, m.up, hb2, ffn);
        else {
            m.gate.matmul(xb, dim, hb, ffn, n, ffn, dim);
            m.up.matmul(xb, dim, hb2, ffn, n, ffn, dim);
        }
        Activations.swiglu(hb, hb2, n * ffn);
        m.down.matmul(hb, ffn, xb, dim, n, dim, ffn);
        for (int i = 0; i < n * dim; i++) x[i] += xb[i];
    }

    private boolean[] pendingEvict = new boolean[0];
    private float[] logitsTmp = new float[0];
    private float[] adapterIn = new float[0];

    /**
     * DMS decisions. Borrowed-neuron checkpoints: before RoPE, the last channel of the first query head of each KV
     * group gives the decision and is then zeroed; after RoPE it is zeroed again (RoPE mixes it with its partner).
     * Adapter checkpoints (a separate projection): the decision is scale * proj(RMSNorm(x)) - offset on the layer's
     * input x, and no query channel is touched.
     */
    private void dmsDecideAndZero(int layer, int n, boolean beforeRope) {
        int hd = c.headDim(), qDim = c.qDim(), group = c.groupSize(), kvh = c.kvHeads(), dim = c.dim();
        if (pendingEvict.length < n * kvh) pendingEvict = new boolean[n * kvh];
        boolean adapter = w.dmsAlpha != null;
        for (int i = 0; i < n; i++) {
            JvmSequence s = rowSeq[i];
            if (s.dms == null) continue;
            if (adapter && beforeRope) rmsnorm(adapterIn, 0, x, i * dim, w.dmsAlphaNorm[layer], dim);
            for (int g = 0; g < kvh; g++) {
                int idx = i * qDim + g * group * hd + hd - 1;
                if (beforeRope) {
                    boolean evict;
                    if (adapter) {
                        float z = w.dmsAlphaBias[layer][g];
                        for (int j = 0; j < dim; j++) z += w.dmsAlpha[layer][g * dim + j] * adapterIn[j];
                        evict = s.dms.evicts(z);
                    } else {
                        evict = s.dms.evicts(q[idx]);
                    }
                    int decided = DmsStep.decidedPosition(s.dms, rowPos[i]);
                    if (s.forcedEvictFraction >= 0) evict = DmsStep.forcedEviction(s.forcedEvictFraction, layer, g, decided);
                    pendingEvict[i * kvh + g] = evict;
                    if (decided >= 0 && s.observer != null) s.observer.decided(layer, g, decided, evict);
                }
                if (!adapter) q[idx] = 0f;
            }
        }
    }

    private void rope(float[] vec, int off, int row) {
        int half = c.headDim() / 2, base = row * half;
        if (c.ropeHalf()) {
            for (int j = 0; j < half; j++) {
                float cs = ropeCos[base + j], sn = ropeSin[base + j];
                float a = vec[off + j], b = vec[off + j + half];
                vec[off + j] = a * cs - b * sn;
                vec[off + j + half] = a * sn + b * cs;
            }
        } else {
            for (int j = 0; j < half; j++) {
                float cs = ropeCos[base + j], sn = ropeSin[base + j];
                float a = vec[off + 2 * j], b = vec[off + 2 * j + 1];
                vec[off + 2 * j] = a * cs - b * sn;
                vec[off + 2 * j + 1] = a * sn + b * cs;
            }
        }
    }

    public static float[] ropeInverseFrequencies(ModelConfig c, float[] freqFactors) {
        int half = c.headDim() / 2;
        float[] f = new float[half];
        ModelConfig.RopeScaling rs = c.ropeScaling();
        for (int j = 0; j < half; j++) {
            double freq = Math.pow(c.ropeTheta(), -2.0 * j / c.headDim());
            if (freqFactors != null) {
                freq /= freqFactors[j];
            } else if (rs != null) {
                double lowWavelen = rs.originalContext() / rs.lowFreqFactor();
                double highWavelen = rs.originalContext() / rs.highFreqFactor();
                double wavelen = 2 * Math.PI / freq;
                if (wavelen > lowWavelen) {
                    freq /= rs.factor();
                } else if (wavelen >= highWavelen) {
                    double smooth = (rs.originalContext() / wavelen - rs.lowFreqFactor()) / (rs.highFreqFactor() - rs.lowFreqFactor());
                    freq = (1 - smooth) * freq / rs.factor() + smooth * freq;
                }
            }
            f[j] = (float) freq;
        }
        return f;
    }

    @Override
    public void prepareDecode(ProgressListener progress) {
        progress.start("decode copies", c.layers() + 1);
        for (int l = 0; l < c.layers(); l++) {
            decodeMatrices(l);
            progress.advance(l + 1);
        }
        decodeOutput();
        progress.advance(c.layers() + 1);
        progress.end();
    }

    /** Bytes of /dev/shm that decode's copies take once every layer has decoded a row (see DecodeLayout). */
    public long decodeCopyBytes() {
        long total = DecodeLayout.copyBytes(w.output, c.vocabSize(), c.dim());
        for (int l = 0; l < c.layers(); l++) for (Matrix m : layerMatrices(l)) total += DecodeLayout.copyBytes(m.t, m.rows, m.cols);
        return total;
    }

    private record Matrix(FloatTensor t, int rows, int cols) {}

    /** Layer l's stored matrices with their [rows, cols], in {@link LayerMatrices}' order. */
    private Matrix[] layerMatrices(int l) {
        int dim = c.dim(), qDim = c.qDim(), kvDim = c.kvDim(), ffn = c.ffnDim();
        return new Matrix[]{new Matrix(w.wq[l], qDim, dim), new Matrix(w.wk[l], kvDim, dim), new Matrix(w.wv[l], kvDim, dim),
                new Matrix(w.wo[l], dim, qDim), new Matrix(w.wGate[l], ffn, dim), new Matrix(w.wUp[l], ffn, dim),
                new Matrix(w.wDown[l], dim, ffn)};
    }

    /** The output matrix as single-row logits multiply it (see DecodeLayout), made on first use. */
    private FloatTensor decodeOutput() {
        if (decodeOutput == null) decodeOutput = DecodeLayout.of(w.output, c.vocabSize(), c.dim());
        return decodeOutput;
    }

    /** Decode's copy where it batches rows as it multiplies one, else the stored matrix (see {@link #fewRows}). */
    private static FloatTensor few(FloatTensor copy, FloatTensor stored) {
        return copy != null && copy.batchesLikeRows() ? copy : stored;
    }

    /** Layer l's matrices for a step of n rows. */
    private LayerMatrices matrices(int l, int n) {
        if (n == 1) return decodeMatrices(l);
        return n < FloatTensor.GEMM_ROWS && fewRows[l] != null ? fewRows[l] : stored[l];
    }

    private LayerMatrices decodeMatrices(int l) {
        if (decode[l] == null) {
            FloatTensor[] d = Arrays.stream(layerMatrices(l)).map(m -> DecodeLayout.of(m.t, m.rows, m.cols)).toArray(FloatTensor[]::new), s = stored[l].all();
            for (int i = 0; i < d.length; i++) s[i] = few(d[i], s[i]);
            fewRows[l] = LayerMatrices.of(s);
            decode[l] = LayerMatrices.of(d);
        }
        return decode[l];
    }

    private void rmsnormRows(float[] out, float[] in, float[] weight, int n, int dim) {
        for (int i = 0; i < n; i++) rmsnorm(out, i * dim, in, i * dim, weight, dim);
    }

    private void rmsnorm(float[] out, int outOff, float[] in, int inOff, float[] weight, int n) {
        double ss = 0;
        for (int i = 0; i < n; i++) ss += in[inOff + i] * in[inOff + i];
        float inv = (float) (1.0 / Math.sqrt(ss / n + c.rmsEps()));
        for (int i = 0; i < n; i++) out[outOff + i] = weight[i] * (in[inOff + i] * inv);
    }
}
