package dev.fastdms.model.train;

import dev.fastdms.model.ModelConfig;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static dev.fastdms.model.train.FiniteDifference.*;
import static org.junit.jupiter.api.Assertions.*;

/** Every backward op of the trainer against central finite differences, on small shapes. */
class OpGradientTest {
    static final double TOL = 1e-6;
    final SplittableRandom r = new SplittableRandom(7);

    @Test
    void linear() {
        int rows = 3, in = 5, out = 4;
        double[] x = random(r, rows * in, 1), w = random(r, out * in, 1), dy = random(r, rows * out, 1);
        double[] y = new double[rows * out];
        java.util.function.DoubleSupplier loss = () -> { Linear.forward(x, rows, in, Linear.transpose(w, out, in), out, y); return dot(y, dy); };
        double[] dx = new double[x.length], dw = new double[w.length];
        Linear.backward(x, rows, in, w, out, dy, dx, dw);
        check("dx", x, dx, loss, TOL);
        check("dw", w, dw, loss, TOL);
    }

    @Test
    void rmsNorm() {
        int n = 6;
        double[] x = random(r, n, 2), w = random(r, n, 1.5), dy = random(r, n, 1), y = new double[n];
        java.util.function.DoubleSupplier loss = () -> { RmsNorm.forward(x, 0, w, n, 1e-5, y, 0); return dot(y, dy); };
        double inv = RmsNorm.forward(x, 0, w, n, 1e-5, y, 0);
        double[] dx = new double[n], dw = new double[n];
        RmsNorm.backward(x, 0, w, n, inv, dy, 0, dx, 0, dw);
        check("dx", x, dx, loss, TOL);
        check("dw", w, dw, loss, TOL);
    }

    @Test
    void ropeBothLayouts() {
        for (boolean halves : new boolean[]{false, true}) {
            ModelConfig c = TinyModels.config(halves, false);
            Rope rope = new Rope(c, null, 5);
            int hd = c.headDim();
            double[] v = random(r, hd, 1), dy = random(r, hd, 1);
            java.util.function.DoubleSupplier loss = () -> { double[] y = v.clone(); rope.rotate(y, 0, 3, false); return dot(y, dy); };
            double[] dv = dy.clone();
            rope.rotate(dv, 0, 3, true);
            check("rope halves=" + halves, v, dv, loss, TOL);
        }
    }

    @Test
    void swiGlu() {
        int n = 7;
        double[] g = random(r, n, 3), u = random(r, n, 2), dh = random(r, n, 1), h = new double[n];
        java.util.function.DoubleSupplier loss = () -> { SwiGlu.forward(g, u, h, n); return dot(h, dh); };
        double[] dg = new double[n], du = new double[n];
        SwiGlu.backward(g, u, dh, dg, du, n);
        check("dgate", g, dg, loss, TOL);
        check("dup", u, du, loss, TOL);
    }

    @Test
    void klDivergence() {
        int n = 9;
        double[] s = random(r, n, 3), teacher = random(r, n, 3), tlp = new double[n], ds = new double[n];
        Distillation.logSoftmax(teacher, 0, n, tlp, 0);
        double kl = Distillation.klAndGradient(s, 0, tlp, 0, n, 0.5, ds, 0);
        assertTrue(kl > 0);
        check("dlogits", s, ds, () -> 0.5 * Distillation.klAndGradient(s, 0, tlp, 0, n, 1, new double[n], 0), TOL);
        assertEquals(0, Distillation.klAndGradient(teacher, 0, tlp, 0, n, 1, new double[n], 0), 1e-12, "KL of a distribution with itself");
    }

    @Test
    void gumbelSigmoidDecision() {
        GumbelDecision d = new GumbelDecision(3, 0.5, 0.7);
        double[] q = {0.4, -0.3, 1.2};
        double noise = 0.37, dAlpha = 0.8, dLogKeep = -1.3;
        java.util.function.DoubleSupplier loss = () -> {
            double s = 0;
            for (double x : q) { double z = d.relaxed(x, noise); s += dAlpha * GumbelDecision.alpha(z) + dLogKeep * GumbelDecision.logKeep(z); }
            return s;
        };
        double[] dq = new double[q.length];
        for (int i = 0; i < q.length; i++) dq[i] = d.channelGradient(d.relaxed(q[i], noise), dAlpha, dLogKeep);
        check("dq_chan", q, dq, loss, TOL);
        assertEquals(Math.log(1 - GumbelDecision.alpha(0.3)), GumbelDecision.logKeep(0.3), 1e-15);
        assertEquals(-800, GumbelDecision.logKeep(800), 1e-9, "log(1 - α) stays finite when α rounds to 1");
        assertEquals(GumbelDecision.logisticNoise(1, 2, 3, 4, 5, 6), GumbelDecision.logisticNoise(1, 2, 3, 4, 5, 6));
        assertNotEquals(GumbelDecision.logisticNoise(1, 2, 3, 4, 5, 6), GumbelDecision.logisticNoise(1, 2, 3, 4, 6, 5));
    }

    @Test
    void attentionWithSoftDmsMask() {
        int T = 7, heads = 4, kvh = 2, hd = 4, window = 2;
        DmsAttention a = new DmsAttention(T, heads, kvh, hd, window);
        double[] q = random(r, T * heads * hd, 1), k = random(r, T * kvh * hd, 1), v = random(r, T * kvh * hd, 1);
        double[] mask = random(r, kvh * T, 2);
        for (int i = 0; i < mask.length; i++) mask[i] -= 2; // log-probabilities are negative
        double[] dOut = random(r, T * heads * hd, 1), out = new double[T * heads * hd], p = new double[heads * T * T];
        java.util.function.DoubleSupplier loss = () -> { a.forward(q, k, v, mask, p, out); return dot(out, dOut); };
        loss.getAsDouble();
        double[] dq = new double[q.length], dk = new double[k.length], dv = new double[v.length], dMask = new double[mask.length];
        a.backward(q, k, v, p, dOut, dq, dk, dv, dMask);
        check("dq", q, dq, loss, TOL);
        check("dk", k, dk, loss, TOL);
        check("dv", v, dv, loss, TOL);
        check("dmask", mask, dMask, loss, TOL);
        for (int g = 0; g < kvh; g++) {
            for (int j = T - 1 - window; j < T; j++) assertEquals(0, dMask[g * T + j], "key " + j + " never leaves the window of the last query");
            assertNotEquals(0, dMask[g * T]);
        }
    }

    @Test
    void maskEvictsOnlyKeysOutsideTheWindow() {
        int T = 6, heads = 2, kvh = 1, hd = 4, window = 1;
        DmsAttention a = new DmsAttention(T, heads, kvh, hd, window);
        double[] q = random(r, T * heads * hd, 1), k = random(r, T * kvh * hd, 1), v = random(r, T * kvh * hd, 1);
        double[] evictAll = new double[T];
        java.util.Arrays.fill(evictAll, -1e4);
        double[] p = new double[heads * T * T], out = new double[T * heads * hd];
        a.forward(q, k, v, evictAll, p, out);
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < T; i++) {
                double inWindow = 0;
                for (int j = 0; j <= i; j++) {
                    double pj = p[(h * T + i) * T + j];
                    if (i - j > window) assertEquals(0, pj, 1e-300, "evicted key " + j + " seen by query " + i);
                    else inWindow += pj;
                }
                assertEquals(1, inWindow, 1e-12);
            }
        }
    }
}
