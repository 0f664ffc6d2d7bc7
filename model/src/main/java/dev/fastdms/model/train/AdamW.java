package dev.fastdms.model.train;

import java.util.ArrayList;
import java.util.List;

/**
 * AdamW (decoupled weight decay on matrices, not on norm gains) after clipping the global gradient norm, with a
 * linear warm-up and a cosine decay to a tenth of the peak learning rate.
 */
final class AdamW {
    static final double BETA1 = 0.9, BETA2 = 0.95, EPS = 1e-8, CLIP_NORM = 1.0, FINAL_LR_FRACTION = 0.1;

    private final List<double[]> params = new ArrayList<>(), m = new ArrayList<>(), v = new ArrayList<>();
    private final List<Boolean> decays = new ArrayList<>();
    private final double peakLr, weightDecay;
    private final int steps, warmup;
    private int t;

    AdamW(Params p, double peakLr, double weightDecay, int steps) {
        p.forEach((name, a) -> {
            params.add(a);
            m.add(new double[a.length]);
            v.add(new double[a.length]);
            decays.add(Params.decays(name));
        });
        this.peakLr = peakLr;
        this.weightDecay = weightDecay;
        this.steps = steps;
        warmup = Math.max(1, steps / 20);
    }

    /** The learning rate of step s (0-based). */
    double learningRate(int s) {
        if (s < warmup) return peakLr * (s + 1) / warmup;
        double progress = steps <= warmup ? 1 : (double) (s - warmup) / (steps - warmup);
        return peakLr * (FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, progress))));
    }

    /** Applies one update from grad (same layout as the parameters); returns the gradient norm before clipping. */
    double step(Params grad) {
        List<double[]> g = grad.arrays();
        double ss = 0;
        for (double[] a : g) for (double x : a) ss += x * x;
        double norm = Math.sqrt(ss), clip = norm > CLIP_NORM ? CLIP_NORM / norm : 1;
        double lr = learningRate(t);
        t++;
        double bc1 = 1 - Math.pow(BETA1, t), bc2 = 1 - Math.pow(BETA2, t);
        for (int k = 0; k < params.size(); k++) {
            double[] w = params.get(k), gk = g.get(k), mk = m.get(k), vk = v.get(k);
            double decay = decays.get(k) ? 1 - lr * weightDecay : 1;
            for (int i = 0; i < w.length; i++) {
                double gi = gk[i] * clip;
                mk[i] = BETA1 * mk[i] + (1 - BETA1) * gi;
                vk[i] = BETA2 * vk[i] + (1 - BETA2) * gi * gi;
                w[i] = w[i] * decay - lr * (mk[i] / bc1) / (Math.sqrt(vk[i] / bc2) + EPS);
            }
        }
        return norm;
    }
}
