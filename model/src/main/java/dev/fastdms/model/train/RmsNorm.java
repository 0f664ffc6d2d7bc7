package dev.fastdms.model.train;

/** y = w ⊙ x / rms(x) over vectors of n, as the engine normalises rows and (Qwen3) single heads. */
final class RmsNorm {
    private RmsNorm() {}

    /** Normalises x[off..off+n) into y[off..], returns the inverse rms the backward needs. */
    static double forward(double[] x, int off, double[] w, int n, double eps, double[] y, int yOff) {
        double ss = 0;
        for (int i = 0; i < n; i++) ss += x[off + i] * x[off + i];
        double inv = 1.0 / Math.sqrt(ss / n + eps);
        for (int i = 0; i < n; i++) y[yOff + i] = w[i] * (x[off + i] * inv);
        return inv;
    }

    /** Adds the input gradient to dx[off..] and the weight gradient to dw. */
    static void backward(double[] x, int off, double[] w, int n, double inv, double[] dy, int dyOff, double[] dx, int dxOff, double[] dw) {
        double dot = 0;
        for (int i = 0; i < n; i++) {
            double g = dy[dyOff + i];
            dot += g * w[i] * x[off + i];
            dw[i] += g * x[off + i] * inv;
        }
        double c = dot * inv * inv * inv / n;
        for (int i = 0; i < n; i++) dx[dxOff + i] += dy[dyOff + i] * w[i] * inv - x[off + i] * c;
    }
}
