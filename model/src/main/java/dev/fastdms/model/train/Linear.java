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

    /** y[rows, out] = x[rows, in] · W, given wt = Wᵀ [in, out]. */
    static void forward(double[] x, int rows, int in, double[] wt, int out, double[] y) {
        for (int t = 0; t < rows; t++) {
            int yo = t * out, xo = t * in;
            java.util.Arrays.fill(y, yo, yo + out, 0);
            for (int i = 0; i < in; i++) {
                double a = x[xo + i];
                int wo = i * out;
                for (int o = 0; o < out; o++) y[yo + o] += a * wt[wo + o];
            }
        }
    }

    /** Adds dy·W to dx and dyᵀ·x to dw. */
    static void backward(double[] x, int rows, int in, double[] w, int out, double[] dy, double[] dx, double[] dw) {
        for (int t = 0; t < rows; t++) {
            int xo = t * in, yo = t * out;
            for (int o = 0; o < out; o++) {
                double g = dy[yo + o];
                if (g == 0) continue; // exact: a zero row adds nothing
                int wo = o * in;
                for (int i = 0; i < in; i++) {
                    dx[xo + i] += g * w[wo + i];
                    dw[wo + i] += g * x[xo + i];
                }
            }
        }
    }
}
