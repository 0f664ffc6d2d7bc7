package dev.fastdms.model.train;

/** h = silu(gate) ⊙ up. */
final class SwiGlu {
    private SwiGlu() {}

    static void forward(double[] gate, double[] up, double[] h, int n) {
        for (int i = 0; i < n; i++) h[i] = gate[i] / (1 + Math.exp(-gate[i])) * up[i];
    }

    /** Sets dgate and dup from dh. */
    static void backward(double[] gate, double[] up, double[] dh, double[] dgate, double[] dup, int n) {
        for (int i = 0; i < n; i++) {
            double g = gate[i], s = 1 / (1 + Math.exp(-g));
            dup[i] = dh[i] * g * s;
            dgate[i] = dh[i] * up[i] * s * (1 + g * (1 - s));
        }
    }
}
