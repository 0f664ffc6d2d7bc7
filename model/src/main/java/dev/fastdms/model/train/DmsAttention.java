package dev.fastdms.model.train;

import java.util.Arrays;

/**
 * Causal GQA attention of one sequence with DMS's soft eviction mask: key p's logit gets {@code mask[g][p]} (log of
 * the probability that p is kept) for every query more than {@code window} positions later, in every query head of
 * KV group g. Keys are handled transposed per head ([headDim][T]) so every inner loop runs over positions.
 */
final class DmsAttention {
    final int tokens, heads, kvHeads, headDim, window;
    final double scale;

    DmsAttention(int tokens, int heads, int kvHeads, int headDim, int window) {
        this.tokens = tokens;
        this.heads = heads;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.window = window;
        this.scale = 1 / Math.sqrt(headDim);
    }

    /**
     * @param q    [T][heads·headDim], after RoPE
     * @param k    [T][kvHeads·headDim], after RoPE
     * @param mask [kvHeads][T] log-keep of each key, or null (full causal attention)
     * @param p    receives the probabilities, [heads][T][T] (row i holds keys 0..i)
     * @param out  [T][heads·headDim]
     */
    void forward(double[] q, double[] k, double[] v, double[] mask, double[] p, double[] out) {
        int T = tokens, hd = headDim, qDim = heads * hd, kvDim = kvHeads * hd, group = heads / kvHeads;
        double[] kt = new double[hd * T];
        Arrays.fill(out, 0, T * qDim, 0);
        for (int g = 0; g < kvHeads; g++) {
            transpose(k, g, kt);
            for (int h = g * group; h < (g + 1) * group; h++) {
                for (int i = 0; i < T; i++) {
                    int row = (h * T + i) * T, qo = i * qDim + h * hd;
                    Arrays.fill(p, row, row + i + 1, 0);
                    for (int d = 0; d < hd; d++) {
                        double a = q[qo + d] * scale;
                        int ko = d * T;
                        for (int j = 0; j <= i; j++) p[row + j] += a * kt[ko + j];
                    }
                    if (mask != null) for (int j = 0, m = g * T; j < i - window; j++) p[row + j] += mask[m + j];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j <= i; j++) max = Math.max(max, p[row + j]);
                    double sum = 0;
                    for (int j = 0; j <= i; j++) { double e = Math.exp(p[row + j] - max); p[row + j] = e; sum += e; }
                    double inv = 1 / sum;
                    for (int j = 0; j <= i; j++) {
                        double pj = p[row + j] * inv;
                        p[row + j] = pj;
                        int vo = j * kvDim + g * hd;
                        for (int d = 0; d < hd; d++) out[qo + d] += pj * v[vo + d];
                    }
                }
            }
        }
    }

    /** Sets dq; adds to dk, dv and (when not null) dMask. */
    void backward(double[] q, double[] k, double[] v, double[] p, double[] dOut,
                  double[] dq, double[] dk, double[] dv, double[] dMask) {
        int T = tokens, hd = headDim, qDim = heads * hd, kvDim = kvHeads * hd, group = heads / kvHeads;
        double[] kt = new double[hd * T], vt = new double[hd * T], dkt = new double[hd * T], dvt = new double[hd * T];
        double[] dp = new double[T];
        for (int g = 0; g < kvHeads; g++) {
            transpose(k, g, kt);
            transpose(v, g, vt);
            Arrays.fill(dkt, 0);
            Arrays.fill(dvt, 0);
            for (int h = g * group; h < (g + 1) * group; h++) {
                for (int i = 0; i < T; i++) {
                    int row = (h * T + i) * T, qo = i * qDim + h * hd;
                    Arrays.fill(dp, 0, i + 1, 0);
                    for (int d = 0; d < hd; d++) {
                        double a = dOut[qo + d];
                        int o = d * T;
                        for (int j = 0; j <= i; j++) {
                            dp[j] += a * vt[o + j];
                            dvt[o + j] += a * p[row + j];
                        }
                    }
                    double s = 0;
                    for (int j = 0; j <= i; j++) s += p[row + j] * dp[j];
                    for (int j = 0; j <= i; j++) dp[j] = p[row + j] * (dp[j] - s); // now d(logit)
                    if (dMask != null) for (int j = 0, m = g * T; j < i - window; j++) dMask[m + j] += dp[j];
                    for (int d = 0; d < hd; d++) {
                        int o = d * T;
                        double acc = 0, c = q[qo + d] * scale;
                        for (int j = 0; j <= i; j++) {
                            acc += dp[j] * kt[o + j];
                            dkt[o + j] += c * dp[j];
                        }
                        dq[qo + d] = acc * scale;
                    }
                }
            }
            for (int j = 0; j < T; j++) {
                for (int d = 0; d < hd; d++) {
                    dk[j * kvDim + g * hd + d] += dkt[d * T + j];
                    dv[j * kvDim + g * hd + d] += dvt[d * T + j];
                }
            }
        }
    }

    private void transpose(double[] x, int g, double[] xt) {
        int hd = headDim, kvDim = kvHeads * hd;
        for (int j = 0; j < tokens; j++) for (int d = 0; d < hd; d++) xt[d * tokens + j] = x[j * kvDim + g * hd + d];
    }
}
