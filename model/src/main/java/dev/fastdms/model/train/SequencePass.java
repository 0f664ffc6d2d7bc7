package dev.fastdms.model.train;

import dev.fastdms.model.ModelConfig;

import java.util.Arrays;

/**
 * Forward and backward of the whole transformer over one sequence of T tokens, keeping every activation the backward
 * needs. As a student (with a {@link GumbelDecision}) it does what the engine does with DMS: after the Qwen3 q-norm
 * the last channel of each KV group's first query head gives the decision, and is zeroed before and after RoPE;
 * under NVIDIA's convention token p+1 decides for key p, which leaves the window when q - p > window. Without one it
 * is the plain model (the teacher). With the decision adapter instead ({@code adapter}, NVIDIA's
 * {@code dms_separate_alpha}) the decision input is bias[g] + dms_alpha[g]·RMSNorm(x, dms_alpha_norm) on the layer's
 * residual input x, as the engine computes it, and no query channel is zeroed.
 */
final class SequencePass {
    /** What one sequence contributed to a step's loss and statistics. */
    record Loss(double klSum, double compression, double alphaSum, int decisions, double keptFractionSum, int heads, double minHeadAlpha) {}

    final ModelConfig c;
    final int T, L, dim, hd, qDim, kvDim, ffn, vocab, kvh, group;
    final Rope rope;
    final DmsAttention attention;
    final GumbelDecision decision; // null: the teacher
    final boolean adapter;         // decisions from the adapter projection rather than the borrowed channel
    private final double eps;
    final int[] tokens;
    // per layer activations
    /** Decision input before scale and offset (the borrowed channel's value or the adapter's output), [L][T·kvh]. */
    final double[][] dec;
    final double[][] xnA, invA; // adapter only: RMSNorm(xIn) and its inverse rms
    final double[][] xIn, inv1, xn1, qRaw, kRaw, qN, kN, invQ, invK, v, qRot, kRot, z, mask, p, att, xMid, inv2, xn2, gate, up, h;
    final double[] xF, invF, xnF, logits;
    // backward scratch
    private final double[] dx, dxn, dAtt, dq, dk, dv, dGate, dUp, dh, dMask, dxnA;

    SequencePass(ModelConfig c, float[] ropeFreqs, int tokens, GumbelDecision decision, int window) {
        this(c, ropeFreqs, tokens, decision, window, false);
    }

    SequencePass(ModelConfig c, float[] ropeFreqs, int tokens, GumbelDecision decision, int window, boolean adapter) {
        this.c = c;
        T = tokens; L = c.layers(); dim = c.dim(); hd = c.headDim(); qDim = c.qDim(); kvDim = c.kvDim();
        ffn = c.ffnDim(); vocab = c.vocabSize(); kvh = c.kvHeads(); group = c.groupSize();
        eps = c.rmsEps();
        this.decision = decision;
        if (adapter && decision == null) throw new IllegalArgumentException("an adapter pass needs a decision");
        this.adapter = adapter;
        dec = new double[L][T * kvh];
        xnA = adapter ? new double[L][T * dim] : null;
        invA = adapter ? new double[L][T] : null;
        dxnA = adapter ? new double[dim] : null;
        rope = new Rope(c, ropeFreqs, T);
        attention = new DmsAttention(T, c.heads(), kvh, hd, window);
        this.tokens = new int[T];
        xIn = new double[L][T * dim]; inv1 = new double[L][T]; xn1 = new double[L][T * dim];
        qRaw = new double[L][T * qDim]; kRaw = new double[L][T * kvDim]; v = new double[L][T * kvDim];
        qN = c.qkNorm() ? new double[L][T * qDim] : qRaw;
        kN = c.qkNorm() ? new double[L][T * kvDim] : kRaw;
        invQ = new double[L][T * c.heads()]; invK = new double[L][T * kvh];
        qRot = new double[L][T * qDim]; kRot = new double[L][T * kvDim];
        z = new double[L][T * kvh]; mask = new double[L][kvh * T];
        p = new double[L][c.heads() * T * T]; att = new double[L][T * qDim];
        xMid = new double[L][T * dim]; inv2 = new double[L][T]; xn2 = new double[L][T * dim];
        gate = new double[L][T * ffn]; up = new double[L][T * ffn]; h = new double[L][T * ffn];
        xF = new double[T * dim]; invF = new double[T]; xnF = new double[T * dim]; logits = new double[T * vocab];
        dx = new double[T * dim]; dxn = new double[T * dim]; dAtt = new double[T * qDim]; dq = new double[T * qDim];
        dk = new double[T * kvDim]; dv = new double[T * kvDim];
        dGate = new double[T * ffn]; dUp = new double[T * ffn]; dh = new double[T * ffn]; dMask = new double[kvh * T];
    }

    /** Index of the borrowed decision channel of KV group g in row t of q. */
    private int channel(int t, int g) { return t * qDim + g * group * hd + hd - 1; }

    /**
     * Runs the model over tokens[off..off+T); fills {@link #logits}.
     *
     * @param noise logistic noise [layer][T][kvHeads] for the student's decisions (ignored by the teacher)
     */
    void forward(Params w, Params.Transposed wt, int[] src, int off, double[] noise) {
        System.arraycopy(src, off, tokens, 0, T);
        if (adapter != (decision != null && w.hasAdapter())) {
            throw new IllegalArgumentException(adapter ? "the weights carry no decision adapter" : "the weights carry a decision adapter this pass does not use");
        }
        double[] x = new double[T * dim], tmp = new double[T * dim];
        for (int t = 0; t < T; t++) System.arraycopy(w.embedding, tokens[t] * dim, x, t * dim, dim);
        for (int l = 0; l < L; l++) {
            System.arraycopy(x, 0, xIn[l], 0, x.length);
            for (int t = 0; t < T; t++) inv1[l][t] = RmsNorm.forward(x, t * dim, w.attnNorm[l], dim, eps, xn1[l], t * dim);
            Linear.forward(xn1[l], T, dim, wt.wq[l], qDim, qRaw[l]);
            Linear.forward(xn1[l], T, dim, wt.wk[l], kvDim, kRaw[l]);
            Linear.forward(xn1[l], T, dim, wt.wv[l], kvDim, v[l]);
            if (c.qkNorm()) {
                for (int i = 0; i < T * c.heads(); i++) invQ[l][i] = RmsNorm.forward(qRaw[l], i * hd, w.qNorm[l], hd, eps, qN[l], i * hd);
                for (int i = 0; i < T * kvh; i++) invK[l][i] = RmsNorm.forward(kRaw[l], i * hd, w.kNorm[l], hd, eps, kN[l], i * hd);
            }
            System.arraycopy(qN[l], 0, qRot[l], 0, T * qDim);
            System.arraycopy(kN[l], 0, kRot[l], 0, T * kvDim);
            if (decision != null) {
                if (adapter) {
                    for (int t = 0; t < T; t++) {
                        invA[l][t] = RmsNorm.forward(xIn[l], t * dim, w.dmsAlphaNorm[l], dim, eps, xnA[l], t * dim);
                        for (int g = 0; g < kvh; g++) {
                            double a = w.dmsAlphaBias[l][g];
                            for (int j = 0, o = g * dim, xo = t * dim; j < dim; j++) a += w.dmsAlpha[l][o + j] * xnA[l][xo + j];
                            dec[l][t * kvh + g] = a;
                        }
                    }
                } else {
                    for (int t = 0; t < T; t++) {
                        for (int g = 0; g < kvh; g++) {
                            dec[l][t * kvh + g] = qN[l][channel(t, g)];
                            qRot[l][channel(t, g)] = 0;
                        }
                    }
                }
                for (int i = 0; i < T * kvh; i++) z[l][i] = decision.relaxed(dec[l][i], noise[l * T * kvh + i]);
                // key j's decision is made by token j+1; the last key has none yet and never leaves the window here
                for (int g = 0; g < kvh; g++) {
                    for (int j = 0; j < T; j++) mask[l][g * T + j] = j + 1 < T ? GumbelDecision.logKeep(z[l][(j + 1) * kvh + g]) : 0;
                }
            }
            for (int t = 0; t < T; t++) {
                for (int hh = 0; hh < c.heads(); hh++) rope.rotate(qRot[l], t * qDim + hh * hd, t, false);
                for (int g = 0; g < kvh; g++) rope.rotate(kRot[l], t * kvDim + g * hd, t, false);
            }
            if (decision != null && !adapter) for (int t = 0; t < T; t++) for (int g = 0; g < kvh; g++) qRot[l][channel(t, g)] = 0;
            attention.forward(qRot[l], kRot[l], v[l], decision == null ? null : mask[l], p[l], att[l]);
            Linear.forward(att[l], T, qDim, wt.wo[l], dim, tmp);
            for (int i = 0; i < x.length; i++) x[i] += tmp[i];
            System.arraycopy(x, 0, xMid[l], 0, x.length);
            for (int t = 0; t < T; t++) inv2[l][t] = RmsNorm.forward(x, t * dim, w.ffnNorm[l], dim, eps, xn2[l], t * dim);
            Linear.forward(xn2[l], T, dim, wt.gate[l], ffn, gate[l]);
            Linear.forward(xn2[l], T, dim, wt.up[l], ffn, up[l]);
            SwiGlu.forward(gate[l], up[l], h[l], T * ffn);
            Linear.forward(h[l], T, ffn, wt.down[l], dim, tmp);
            for (int i = 0; i < x.length; i++) x[i] += tmp[i];
        }
        System.arraycopy(x, 0, xF, 0, x.length);
        for (int t = 0; t < T; t++) invF[t] = RmsNorm.forward(x, t * dim, w.outputNorm, dim, eps, xnF, t * dim);
        Linear.forward(xnF, T, dim, wt.head, vocab, logits);
    }

    /** log softmax of every row of {@link #logits} (the teacher's targets). */
    double[] logProbs() {
        double[] lp = new double[T * vocab];
        for (int t = 0; t < T; t++) Distillation.logSoftmax(logits, t * vocab, vocab, lp, t * vocab);
        return lp;
    }

    /**
     * The student's loss klScale·Σ KL + compressionScale·max(0, target - mean α) and its gradients with respect to the
     * logits and the decisions α (about keys 0..T-2, made by tokens 1..T-1), which {@link #backward} takes. With
     * {@code perHead} the compression term is the mean over (layer, KV head) of max(0, target - that head's mean α):
     * the same gradient per decision as the global term, but only for the heads below the target.
     */
    Loss loss(double[] teacherLogP, double targetEviction, double klScale, double compressionScale, boolean perHead, double[] dLogits, double[] dAlpha) {
        double kl = 0;
        for (int t = 0; t < T; t++) kl += Distillation.klAndGradient(logits, t * vocab, teacherLogP, t * vocab, vocab, klScale, dLogits, t * vocab);
        Arrays.fill(dAlpha, 0);
        double alphaSum = 0, kept = 0, hinge = 0, minHead = 1;
        int n = L * (T - 1) * kvh;
        for (int l = 0; l < L; l++) {
            for (int g = 0; g < kvh; g++) {
                double headSum = 0;
                for (int t = 1; t < T; t++) headSum += GumbelDecision.alpha(z[l][t * kvh + g]);
                alphaSum += headSum;
                minHead = Math.min(minHead, headSum / (T - 1));
                kept += keptFraction(l, g);
                double headHinge = targetEviction - headSum / (T - 1);
                if (perHead && headHinge > 0) {
                    hinge += headHinge / (L * kvh);
                    for (int t = 1; t < T; t++) dAlpha[(l * T + t) * kvh + g] = -compressionScale / n;
                }
            }
        }
        if (!perHead) {
            hinge = Math.max(0, targetEviction - alphaSum / n);
            if (hinge > 0) {
                for (int l = 0; l < L; l++) for (int t = 1; t < T; t++) for (int g = 0; g < kvh; g++) dAlpha[(l * T + t) * kvh + g] = -compressionScale / n;
            }
        }
        return new Loss(kl, hinge, alphaSum, n, kept, L * kvh, minHead);
    }

    /** Retained / seen at the last query under the hard rule (logit > 0 evicts), as the engine's cache counts it. */
    private double keptFraction(int l, int g) {
        int window = attention.window, live = 0;
        for (int pos = 0; pos < T; pos++) {
            boolean inWindow = T - 1 - pos <= window;
            if (inWindow || decision.logit(dec[l][(pos + 1) * kvh + g]) <= 0) live++;
        }
        return (double) live / T;
    }

    /** Adds the gradient of the loss with respect to every parameter to grad. */
    void backward(Params w, double[] dLogits, double[] dAlpha, Params grad) {
        Arrays.fill(dxn, 0);
        Linear.backward(xnF, T, dim, w.head(), vocab, dLogits, dxn, grad.head());
        Arrays.fill(dx, 0);
        for (int t = 0; t < T; t++) RmsNorm.backward(xF, t * dim, w.outputNorm, dim, invF[t], dxn, t * dim, dx, t * dim, grad.outputNorm);
        for (int l = L - 1; l >= 0; l--) {
            // FFN: x_out = xMid + down(swiglu(gate(xn2), up(xn2)))
            Arrays.fill(dh, 0);
            Linear.backward(h[l], T, ffn, w.down[l], dim, dx, dh, grad.down[l]);
            SwiGlu.backward(gate[l], up[l], dh, dGate, dUp, T * ffn);
            Arrays.fill(dxn, 0);
            Linear.backward(xn2[l], T, dim, w.gate[l], ffn, dGate, dxn, grad.gate[l]);
            Linear.backward(xn2[l], T, dim, w.up[l], ffn, dUp, dxn, grad.up[l]);
            for (int t = 0; t < T; t++) RmsNorm.backward(xMid[l], t * dim, w.ffnNorm[l], dim, inv2[l][t], dxn, t * dim, dx, t * dim, grad.ffnNorm[l]);
            // attention: xMid = xIn + wo(att)
            Arrays.fill(dAtt, 0);
            Linear.backward(att[l], T, qDim, w.wo[l], dim, dx, dAtt, grad.wo[l]);
            Arrays.fill(dk, 0);
            Arrays.fill(dv, 0);
            Arrays.fill(dMask, 0);
            attention.backward(qRot[l], kRot[l], v[l], p[l], dAtt, dq, dk, dv, decision == null ? null : dMask);
            if (decision != null && !adapter) for (int t = 0; t < T; t++) for (int g = 0; g < kvh; g++) dq[channel(t, g)] = 0;
            for (int t = 0; t < T; t++) {
                for (int hh = 0; hh < c.heads(); hh++) rope.rotate(dq, t * qDim + hh * hd, t, true);
                for (int g = 0; g < kvh; g++) rope.rotate(dk, t * kvDim + g * hd, t, true);
            }
            if (decision != null) {
                for (int t = 0; t < T; t++) {
                    if (adapter) Arrays.fill(dxnA, 0);
                    for (int g = 0; g < kvh; g++) {
                        double dLogKeep = t >= 1 ? dMask[g * T + t - 1] : 0;
                        double da = t >= 1 && dAlpha != null ? dAlpha[(l * T + t) * kvh + g] : 0;
                        double dd = decision.channelGradient(z[l][t * kvh + g], da, dLogKeep);
                        if (!adapter) {
                            dq[channel(t, g)] = dd;
                            continue;
                        }
                        grad.dmsAlphaBias[l][g] += dd;
                        double[] wa = w.dmsAlpha[l], ga = grad.dmsAlpha[l], xa = xnA[l];
                        for (int j = 0, o = g * dim, xo = t * dim; j < dim; j++) {
                            ga[o + j] += dd * xa[xo + j];
                            dxnA[j] += dd * wa[o + j];
                        }
                    }
                    // the adapter reads the residual stream itself: its gradient joins dx beside the attention's
                    if (adapter) RmsNorm.backward(xIn[l], t * dim, w.dmsAlphaNorm[l], dim, invA[l][t], dxnA, 0, dx, t * dim, grad.dmsAlphaNorm[l]);
                }
            }
            double[] dqRaw = dq, dkRaw = dk;
            if (c.qkNorm()) {
                dqRaw = new double[T * qDim];
                dkRaw = new double[T * kvDim];
                for (int i = 0; i < T * c.heads(); i++) RmsNorm.backward(qRaw[l], i * hd, w.qNorm[l], hd, invQ[l][i], dq, i * hd, dqRaw, i * hd, grad.qNorm[l]);
                for (int i = 0; i < T * kvh; i++) RmsNorm.backward(kRaw[l], i * hd, w.kNorm[l], hd, invK[l][i], dk, i * hd, dkRaw, i * hd, grad.kNorm[l]);
            }
            Arrays.fill(dxn, 0);
            Linear.backward(xn1[l], T, dim, w.wq[l], qDim, dqRaw, dxn, grad.wq[l]);
            Linear.backward(xn1[l], T, dim, w.wk[l], kvDim, dkRaw, dxn, grad.wk[l]);
            Linear.backward(xn1[l], T, dim, w.wv[l], kvDim, dv, dxn, grad.wv[l]);
            for (int t = 0; t < T; t++) RmsNorm.backward(xIn[l], t * dim, w.attnNorm[l], dim, inv1[l][t], dxn, t * dim, dx, t * dim, grad.attnNorm[l]);
        }
        for (int t = 0; t < T; t++) {
            int e = tokens[t] * dim;
            for (int i = 0; i < dim; i++) grad.embedding[e + i] += dx[t * dim + i];
        }
    }
}
