package dev.fastdms.model.train;

import java.util.function.DoubleSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Central finite differences in double precision against an analytic gradient. */
final class FiniteDifference {
    static final double H = 1e-6;

    private FiniteDifference() {}

    /** Checks d(loss)/d(x[i]) = analytic[i] for every i, to a relative tolerance. */
    static void check(String what, double[] x, double[] analytic, DoubleSupplier loss, double tol) {
        double scale = 0;
        for (double a : analytic) scale = Math.max(scale, Math.abs(a));
        for (int i = 0; i < x.length; i++) {
            double keep = x[i];
            x[i] = keep + H;
            double up = loss.getAsDouble();
            x[i] = keep - H;
            double down = loss.getAsDouble();
            x[i] = keep;
            double fd = (up - down) / (2 * H);
            assertEquals(fd, analytic[i], tol * Math.max(1e-3, Math.max(Math.abs(fd), scale)), what + "[" + i + "]");
        }
    }

    static double[] random(java.util.SplittableRandom r, int n, double scale) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) v[i] = (r.nextDouble() * 2 - 1) * scale;
        return v;
    }

    static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += a[i] * b[i];
        return s;
    }
}
