package dev.fastdms.model.train;

/**
 * A bias-free linear layer y = x·Wᵀ on rows, W row-major [out, in]. Every loop is an axpy over a contiguous row
 * (the JIT vectorises those; dot-product reductions in double it does not), so the forward takes W transposed.
 */
final class Linear {
    private Linear() {}

    /** Wᵀ [in, out] of W [out, in]. */
    static double[] transpose(double[] w, int out, int in) {
        double[] t = new double[w.length];
        for (int o = 0; o < out; o++) for (int i = 0; i < in; i++) t[i * out + o] = w[o * in + i];
        return t;
    }

    /** y[rows, out] = x[rows, in] · W, given wt = Wᵀ [in, out]; four rows share each load of a weight row. */
    static void forward(double[] x, int rows, int in, double[] wt, int out, double[] y) {
        java.util.Arrays.fill(y, 0, rows * out, 0);
        int t = 0;
        for (; t + 4 <= rows; t += 4) {
            int y0 = t * out, y1 = y0 + out, y2 = y1 + out, y3 = y2 + out, x0 = t * in;
            for (int i = 0; i < in; i++) {
                double a0 = x[x0 + i], a1 = x[x0 + in + i], a2 = x[x0 + 2 * in + i], a3 = x[x0 + 3 * in + i];
                int wo = i * out;
                for (int o = 0; o < out; o++) {
                    double w = wt[wo + o];
                    y[y0 + o] += a0 * w;
                    y[y1 + o] += a1 * w;
                    y[y2 + o] += a2 * w;
                    y[y3 + o] += a3 * w;
                }
            }
        }
        for (; t < rows; t++) {
            int yo = t * out, xo = t * in;
            for (int i = 0; i < in; i++) {
                double a = x[xo + i];
                int wo = i * out;
                for (int o = 0; o < out; o++) y[yo + o] += a * wt[wo + o];
            }
        }
    }

    /** Adds dy·W to dx and dyᵀ·x to dw, four terms per load and store of the accumulated row. */
    static void backward(double[] x, int rows, int in, double[] w, int out, double[] dy, double[] dx, double[] dw) {
        for (int t = 0; t < rows; t++) {
            int xo = t * in, yo = t * out, o = 0;
            for (; o + 4 <= out; o += 4) {
                double g0 = dy[yo + o], g1 = dy[yo + o + 1], g2 = dy[yo + o + 2], g3 = dy[yo + o + 3];
                int w0 = o * in, w1 = w0 + in, w2 = w1 + in, w3 = w2 + in;
                for (int i = 0; i < in; i++) dx[xo + i] += g0 * w[w0 + i] + g1 * w[w1 + i] + g2 * w[w2 + i] + g3 * w[w3 + i];
            }
            for (; o < out; o++) {
                double g = dy[yo + o];
                int wo = o * in;
                for (int i = 0; i < in; i++) dx[xo + i] += g * w[wo + i];
            }
        }
        for (int o = 0; o < out; o++) {
            int wo = o * in, t = 0;
            for (; t + 4 <= rows; t += 4) {
                double g0 = dy[t * out + o], g1 = dy[(t + 1) * out + o], g2 = dy[(t + 2) * out + o], g3 = dy[(t + 3) * out + o];
                int x0 = t * in, x1 = x0 + in, x2 = x1 + in, x3 = x2 + in;
                for (int i = 0; i < in; i++) dw[wo + i] += g0 * x[x0 + i] + g1 * x[x1 + i] + g2 * x[x2 + i] + g3 * x[x3 + i];
            }
            for (; t < rows; t++) {
                double g = dy[t * out + o];
                int xo = t * in;
                for (int i = 0; i < in; i++) dw[wo + i] += g * x[xo + i];
            }
        }
    }
}
