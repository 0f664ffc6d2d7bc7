package dev.fastdms.model.train;

/** Per-token KL(teacher ‖ student) of next-token distributions, from raw logits. */
final class Distillation {
    private Distillation() {}

    /** out[off..off+n) = log softmax(logits[off..off+n)). */
    static void logSoftmax(double[] logits, int off, int n, double[] out, int outOff) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) max = Math.max(max, logits[off + i]);
        double sum = 0;
        for (int i = 0; i < n; i++) sum += Math.exp(logits[off + i] - max);
        double lse = max + Math.log(sum);
        for (int i = 0; i < n; i++) out[outOff + i] = logits[off + i] - lse;
    }

    /**
     * KL(teacher ‖ student) of one token; sets dLogits = scale · (p_student - p_teacher), the gradient of scale · KL.
     *
     * @param teacherLogP the teacher's log-probabilities
     */
    static double klAndGradient(double[] logits, int off, double[] teacherLogP, int tOff, int n, double scale, double[] dLogits, int dOff) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) max = Math.max(max, logits[off + i]);
        double sum = 0;
        for (int i = 0; i < n; i++) sum += Math.exp(logits[off + i] - max);
        double lse = max + Math.log(sum);
        double kl = 0;
        for (int i = 0; i < n; i++) {
            double ls = logits[off + i] - lse, lt = teacherLogP[tOff + i], pt = Math.exp(lt);
            if (pt > 0) kl += pt * (lt - ls);
            dLogits[dOff + i] = scale * (Math.exp(ls) - pt);
        }
        return kl;
    }
}
