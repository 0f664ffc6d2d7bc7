package dev.fastdms.cache;

import dev.fastdms.simd.Lanes;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The three loops of grouped-query attention over one KV head, on F32 rows (a page read in place, or a tile of rows
 * decoded into L1): scores of every query head against a run of key rows, a softmax per head, and the weighted sum
 * of a run of value rows. Query heads are processed four at a time so each key or value chunk is loaded once for
 * four heads; a head dimension that is not a multiple of the vector length gets a scalar tail.
 *
 * <p>Nothing here allocates once compiled (all vectors stay in registers), which keeps the decode step free of
 * garbage.
 */
final class AttentionKernels {
    private AttentionKernels() { }

    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    static final int L = F.length();

    /**
     * sc[h * n + s0 + r] = q_h · row_r for h < nQ and r < rows, where q_h = q[qOff + h*dim ..] and row_r =
     * kb[ko + r*dim ..].
     */
    static void scores(float[] q, int qOff, int nQ, int dim, float[] kb, int ko, int rows, float[] sc, int n, int s0) {
        int h = 0;
        for (; h + 4 <= nQ; h += 4) scores4(q, qOff + h * dim, dim, kb, ko, rows, sc, h * n + s0, n);
        for (; h < nQ; h++) scores1(q, qOff + h * dim, dim, kb, ko, rows, sc, h * n + s0);
    }

    /**
     * Four query heads, two key rows per iteration: eight independent accumulator chains (FMA latency is hidden) and
     * each query chunk loaded once for both rows.
     */
    private static void scores4(float[] q, int qo, int dim, float[] kb, int ko, int rows, float[] sc, int so, int n) {
        int pairs = rows & ~1;
        scores4x2(q, qo, dim, kb, ko, pairs, sc, so, n);
        if (pairs < rows) scores4x1(q, qo, dim, kb, ko + pairs * dim, sc, so + pairs, n);
    }

    // The two-row loop and the odd row are separate methods so that each stays within C2's node budget for inlining:
    // a horizontal sum left out of line would box the accumulators and allocate on every call.

    private static void scores4x2(float[] q, int qo, int dim, float[] kb, int ko, int rows, float[] sc, int so, int n) {
        int vecEnd = dim - dim % L, r = 0;
        for (; r + 2 <= rows; r += 2) {
            int k = ko + r * dim, k2 = k + dim;
            FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
            for (int i = 0; i < vecEnd; i += L) {
                FloatVector x = FloatVector.fromArray(F, kb, k + i), y = FloatVector.fromArray(F, kb, k2 + i);
                FloatVector q0 = FloatVector.fromArray(F, q, qo + i), q1 = FloatVector.fromArray(F, q, qo + dim + i);
                a0 = q0.fma(x, a0);
                b0 = q0.fma(y, b0);
                a1 = q1.fma(x, a1);
                b1 = q1.fma(y, b1);
                FloatVector q2 = FloatVector.fromArray(F, q, qo + 2 * dim + i), q3 = FloatVector.fromArray(F, q, qo + 3 * dim + i);
                a2 = q2.fma(x, a2);
                b2 = q2.fma(y, b2);
                a3 = q3.fma(x, a3);
                b3 = q3.fma(y, b3);
            }
            float s0 = Lanes.sum(a0), s1 = Lanes.sum(a1);
            float s2 = Lanes.sum(a2), s3 = Lanes.sum(a3);
            float t0 = Lanes.sum(b0), t1 = Lanes.sum(b1);
            float t2 = Lanes.sum(b2), t3 = Lanes.sum(b3);
            for (int i = vecEnd; i < dim; i++) {
                float x = kb[k + i], y = kb[k2 + i];
                s0 += q[qo + i] * x; t0 += q[qo + i] * y;
                s1 += q[qo + dim + i] * x; t1 += q[qo + dim + i] * y;
                s2 += q[qo + 2 * dim + i] * x; t2 += q[qo + 2 * dim + i] * y;
                s3 += q[qo + 3 * dim + i] * x; t3 += q[qo + 3 * dim + i] * y;
            }
            sc[so + r] = s0; sc[so + r + 1] = t0;
            sc[so + n + r] = s1; sc[so + n + r + 1] = t1;
            sc[so + 2 * n + r] = s2; sc[so + 2 * n + r + 1] = t2;
            sc[so + 3 * n + r] = s3; sc[so + 3 * n + r + 1] = t3;
        }
    }

    /** One key row (at kb[ko ..]) against four query heads. */
    private static void scores4x1(float[] q, int qo, int dim, float[] kb, int ko, float[] sc, int so, int n) {
        int vecEnd = dim - dim % L;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        for (int i = 0; i < vecEnd; i += L) {
            FloatVector kv = FloatVector.fromArray(F, kb, ko + i);
            a0 = FloatVector.fromArray(F, q, qo + i).fma(kv, a0);
            a1 = FloatVector.fromArray(F, q, qo + dim + i).fma(kv, a1);
            a2 = FloatVector.fromArray(F, q, qo + 2 * dim + i).fma(kv, a2);
            a3 = FloatVector.fromArray(F, q, qo + 3 * dim + i).fma(kv, a3);
        }
        float s0 = Lanes.sum(a0), s1 = Lanes.sum(a1);
        float s2 = Lanes.sum(a2), s3 = Lanes.sum(a3);
        for (int i = vecEnd; i < dim; i++) {
            float kv = kb[ko + i];
            s0 += q[qo + i] * kv;
            s1 += q[qo + dim + i] * kv;
            s2 += q[qo + 2 * dim + i] * kv;
            s3 += q[qo + 3 * dim + i] * kv;
        }
        sc[so] = s0;
        sc[so + n] = s1;
        sc[so + 2 * n] = s2;
        sc[so + 3 * n] = s3;
    }

    private static void scores1(float[] q, int qo, int dim, float[] kb, int ko, int rows, float[] sc, int so) {
        int vecEnd = dim - dim % L;
        for (int r = 0; r < rows; r++) {
            int k = ko + r * dim;
            FloatVector a = FloatVector.zero(F);
            for (int i = 0; i < vecEnd; i += L) a = FloatVector.fromArray(F, q, qo + i).fma(FloatVector.fromArray(F, kb, k + i), a);
            float s = Lanes.sum(a);
            for (int i = vecEnd; i < dim; i++) s += q[qo + i] * kb[k + i];
            sc[so + r] = s;
        }
    }

    /**
     * out[outOff + h*dim + c] += Σ_r w[h * n + s0 + r] · vb[vo + r*dim + c] for h < nQ. Columns outer, rows inner:
     * the four heads' accumulators stay in registers across the run of rows (which sits in L1).
     */
    static void accumulate(float[] w, int n, int s0, int nQ, int dim, float[] vb, int vo, int rows, float[] out, int outOff) {
        int vecEnd = dim - dim % L;
        int h = 0;
        for (; h + 4 <= nQ; h += 4) {
            int w0 = h * n + s0, o = outOff + h * dim, c = 0;
            // two column chunks at a time: eight independent accumulator chains, each weight broadcast used twice
            for (; c + 2 * L <= vecEnd; c += 2 * L) {
                int d = c + L;
                FloatVector a0 = FloatVector.fromArray(F, out, o + c), a1 = FloatVector.fromArray(F, out, o + dim + c);
                FloatVector a2 = FloatVector.fromArray(F, out, o + 2 * dim + c), a3 = FloatVector.fromArray(F, out, o + 3 * dim + c);
                FloatVector b0 = FloatVector.fromArray(F, out, o + d), b1 = FloatVector.fromArray(F, out, o + dim + d);
                FloatVector b2 = FloatVector.fromArray(F, out, o + 2 * dim + d), b3 = FloatVector.fromArray(F, out, o + 3 * dim + d);
                for (int r = 0; r < rows; r++) {
                    int row = vo + r * dim;
                    FloatVector x = FloatVector.fromArray(F, vb, row + c), y = FloatVector.fromArray(F, vb, row + d);
                    FloatVector wv = FloatVector.broadcast(F, w[w0 + r]);
                    a0 = x.fma(wv, a0);
                    b0 = y.fma(wv, b0);
                    wv = FloatVector.broadcast(F, w[w0 + n + r]);
                    a1 = x.fma(wv, a1);
                    b1 = y.fma(wv, b1);
                    wv = FloatVector.broadcast(F, w[w0 + 2 * n + r]);
                    a2 = x.fma(wv, a2);
                    b2 = y.fma(wv, b2);
                    wv = FloatVector.broadcast(F, w[w0 + 3 * n + r]);
                    a3 = x.fma(wv, a3);
                    b3 = y.fma(wv, b3);
                }
                a0.intoArray(out, o + c); a1.intoArray(out, o + dim + c); a2.intoArray(out, o + 2 * dim + c); a3.intoArray(out, o + 3 * dim + c);
                b0.intoArray(out, o + d); b1.intoArray(out, o + dim + d); b2.intoArray(out, o + 2 * dim + d); b3.intoArray(out, o + 3 * dim + d);
            }
            for (; c < vecEnd; c += L) {
                FloatVector a0 = FloatVector.fromArray(F, out, o + c), a1 = FloatVector.fromArray(F, out, o + dim + c);
                FloatVector a2 = FloatVector.fromArray(F, out, o + 2 * dim + c), a3 = FloatVector.fromArray(F, out, o + 3 * dim + c);
                for (int r = 0; r < rows; r++) {
                    FloatVector v = FloatVector.fromArray(F, vb, vo + r * dim + c);
                    a0 = v.fma(FloatVector.broadcast(F, w[w0 + r]), a0);
                    a1 = v.fma(FloatVector.broadcast(F, w[w0 + n + r]), a1);
                    a2 = v.fma(FloatVector.broadcast(F, w[w0 + 2 * n + r]), a2);
                    a3 = v.fma(FloatVector.broadcast(F, w[w0 + 3 * n + r]), a3);
                }
                a0.intoArray(out, o + c);
                a1.intoArray(out, o + dim + c);
                a2.intoArray(out, o + 2 * dim + c);
                a3.intoArray(out, o + 3 * dim + c);
            }
        }
        for (; h < nQ; h++) {
            int w0 = h * n + s0, o = outOff + h * dim;
            for (int c = 0; c < vecEnd; c += L) {
                FloatVector a = FloatVector.fromArray(F, out, o + c);
                for (int r = 0; r < rows; r++) a = FloatVector.fromArray(F, vb, vo + r * dim + c).fma(FloatVector.broadcast(F, w[w0 + r]), a);
                a.intoArray(out, o + c);
            }
        }
        if (vecEnd < dim) {
            for (h = 0; h < nQ; h++) {
                int w0 = h * n + s0, o = outOff + h * dim;
                for (int r = 0; r < rows; r++) {
                    float wr = w[w0 + r];
                    for (int c = vecEnd; c < dim; c++) out[o + c] += wr * vb[vo + r * dim + c];
                }
            }
        }
    }

    /**
     * In place over x[off .. off+n): x = exp(scale * (x - max x)); returns the sum. Entries of -infinity (masked
     * slots) become exactly 0. Returns 0 when every entry is -infinity (then all become 0).
     */
    static float softmaxNumerators(float[] x, int off, int n, float scale) {
        int vecEnd = n - n % L, i = 0;
        FloatVector mv = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
        for (; i < vecEnd; i += L) mv = mv.max(FloatVector.fromArray(F, x, off + i));
        float max = mv.reduceLanes(VectorOperators.MAX);
        for (; i < n; i++) max = Math.max(max, x[off + i]);
        if (max == Float.NEGATIVE_INFINITY) {
            java.util.Arrays.fill(x, off, off + n, 0f);
            return 0f;
        }
        float shift = -scale * max;
        FloatVector sum = FloatVector.zero(F);
        for (i = 0; i < vecEnd; i += L) {
            FloatVector e = exp(FloatVector.fromArray(F, x, off + i).fma(scale, shift));
            e.intoArray(x, off + i);
            sum = sum.add(e);
        }
        float s = Lanes.sum(sum);
        for (; i < n; i++) {
            float e = expScalar(x[off + i] * scale + shift);
            x[off + i] = e;
            s += e;
        }
        return s;
    }

    private static final float LOG2E = 1.44269504088896341f, LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f;
    private static final float ROUND = 12582912f; // 1.5 * 2^23: adding and subtracting it rounds to the nearest integer
    private static final float EXP_MIN = -87.33f;  // below this exp(x) is subnormal or zero: return 0

    /**
     * exp(x) for x <= 0 (what a softmax needs; x > 88 would overflow): x = n ln2 + r with |r| <= ln2/2, exp(r) by a
     * degree-6 polynomial (Cephes' expf coefficients, ~1 ulp), times 2^n built in the exponent bits. Inputs below
     * -87.33 (including -infinity) give exactly 0, so no subnormal ever reaches the value FMAs.
     */
    static FloatVector exp(FloatVector x) {
        VectorMask<Float> tiny = x.lt(EXP_MIN);
        FloatVector xc = x.max(EXP_MIN);
        FloatVector nf = xc.fma(LOG2E, ROUND).sub(ROUND);
        FloatVector r = xc.sub(nf.mul(LN2_HI)).sub(nf.mul(LN2_LO));
        FloatVector p = FloatVector.broadcast(F, 1.9875691500e-4f);
        p = p.fma(r, FloatVector.broadcast(F, 1.3981999507e-3f));
        p = p.fma(r, FloatVector.broadcast(F, 8.3334519073e-3f));
        p = p.fma(r, FloatVector.broadcast(F, 4.1665795894e-2f));
        p = p.fma(r, FloatVector.broadcast(F, 1.6666665459e-1f));
        p = p.fma(r, FloatVector.broadcast(F, 5.0000001201e-1f));
        FloatVector y = p.mul(r.mul(r)).add(r).add(1f);
        IntVector n = (IntVector) nf.convert(VectorOperators.F2I, 0);
        FloatVector pow2 = n.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        return y.mul(pow2).blend(0f, tiny);
    }

    static float expScalar(float x) { return x < EXP_MIN ? 0f : (float) Math.exp(x); }
}
