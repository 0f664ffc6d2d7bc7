package dev.fastdms.model.train;

import dev.fastdms.model.ModelConfig;
import dev.fastdms.model.format.ModelFile;
import dev.fastdms.model.format.RawTensor;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The trainable tensors of a Llama/Qwen3 model in double, row-major in the source file's layout, under the canonical
 * names of {@link ModelConfig}; also serves as the gradient of the same shapes. {@code rope_freqs} is carried, not
 * trained.
 */
final class Params {
    final ModelConfig c;
    final double[] embedding, outputNorm;
    final double[] output; // null when tied to the embedding
    final double[][] attnNorm, wq, wk, wv, wo, qNorm, kNorm, ffnNorm, gate, up, down;
    final float[] ropeFreqs; // null without
    /** The DMS decision adapter ({@code dms_alpha.weight} [kvHeads, dim], its bias, its input norm); null without. */
    final double[][] dmsAlpha, dmsAlphaBias, dmsAlphaNorm;

    Params(ModelConfig c, boolean tied, float[] ropeFreqs) { this(c, tied, ropeFreqs, false); }

    Params(ModelConfig c, boolean tied, float[] ropeFreqs, boolean adapter) {
        this.c = c;
        int L = c.layers(), dim = c.dim(), hd = c.headDim(), ffn = c.ffnDim();
        embedding = new double[c.vocabSize() * dim];
        outputNorm = new double[dim];
        output = tied ? null : new double[c.vocabSize() * dim];
        attnNorm = new double[L][dim];
        ffnNorm = new double[L][dim];
        wq = new double[L][c.qDim() * dim];
        wk = new double[L][c.kvDim() * dim];
        wv = new double[L][c.kvDim() * dim];
        wo = new double[L][dim * c.qDim()];
        gate = new double[L][ffn * dim];
        up = new double[L][ffn * dim];
        down = new double[L][dim * ffn];
        qNorm = c.qkNorm() ? new double[L][hd] : null;
        kNorm = c.qkNorm() ? new double[L][hd] : null;
        this.ropeFreqs = ropeFreqs;
        dmsAlpha = adapter ? new double[L][c.kvHeads() * dim] : null;
        dmsAlphaBias = adapter ? new double[L][c.kvHeads()] : null;
        dmsAlphaNorm = adapter ? new double[L][dim] : null;
    }

    boolean hasAdapter() { return dmsAlpha != null; }

    /** The model's tensors, dequantised. */
    static Params load(ModelFile f) {
        ModelConfig c = f.config();
        if (f.optionalTensor("blk.0.dms_alpha.weight") != null) {
            throw new IllegalArgumentException(f.path() + ": has a DMS adapter projection already; retrofitting starts from a model without DMS");
        }
        RawTensor rf = f.optionalTensor("rope_freqs.weight");
        float[] freqs = rf == null ? null : rf.floats();
        Params p = new Params(c, f.optionalTensor("output.weight") == null, freqs);
        p.forEach((name, a) -> {
            float[] v = f.tensor(name).floats();
            if (v.length != a.length) throw new IllegalArgumentException(f.path() + ": tensor " + name + " has " + v.length + " elements, expected " + a.length);
            for (int i = 0; i < a.length; i++) a[i] = v[i];
        });
        return p;
    }

    Params zerosLike() { return new Params(c, output == null, ropeFreqs, hasAdapter()); }

    /**
     * A copy of these (adapter-free) weights plus a fresh decision adapter: projection and bias 0, norm gain 1, so every
     * decision logit is -alphaOffset (almost no eviction) and no query channel is touched.
     */
    Params withNewAdapter() {
        if (hasAdapter()) throw new IllegalStateException("already has an adapter");
        Params p = new Params(c, output == null, ropeFreqs, true);
        java.util.Map<String, double[]> from = new java.util.HashMap<>();
        forEach(from::put);
        p.forEach((name, a) -> {
            double[] src = from.get(name);
            if (src != null) System.arraycopy(src, 0, a, 0, a.length);
        });
        for (double[] n : p.dmsAlphaNorm) java.util.Arrays.fill(n, 1);
        return p;
    }

    /** Every tensor in file order with its canonical name. */
    void forEach(java.util.function.BiConsumer<String, double[]> f) {
        f.accept("token_embd.weight", embedding);
        for (int l = 0; l < c.layers(); l++) {
            String p = "blk." + l + ".";
            f.accept(p + "attn_norm.weight", attnNorm[l]);
            f.accept(p + "attn_q.weight", wq[l]);
            f.accept(p + "attn_k.weight", wk[l]);
            f.accept(p + "attn_v.weight", wv[l]);
            f.accept(p + "attn_output.weight", wo[l]);
            if (qNorm != null) {
                f.accept(p + "attn_q_norm.weight", qNorm[l]);
                f.accept(p + "attn_k_norm.weight", kNorm[l]);
            }
            f.accept(p + "ffn_norm.weight", ffnNorm[l]);
            f.accept(p + "ffn_gate.weight", gate[l]);
            f.accept(p + "ffn_up.weight", up[l]);
            f.accept(p + "ffn_down.weight", down[l]);
            if (dmsAlpha != null) {
                f.accept(p + "dms_alpha.weight", dmsAlpha[l]);
                f.accept(p + "dms_alpha.bias", dmsAlphaBias[l]);
                f.accept(p + "dms_alpha_norm.weight", dmsAlphaNorm[l]);
            }
        }
        f.accept("output_norm.weight", outputNorm);
        if (output != null) f.accept("output.weight", output);
    }

    List<double[]> arrays() {
        List<double[]> all = new ArrayList<>();
        forEach((n, a) -> all.add(a));
        return all;
    }

    /** Whether weight decay applies: matrices yes, norm gains and biases no. */
    static boolean decays(String name) { return !name.endsWith("norm.weight") && !name.endsWith(".bias"); }

    Map<String, float[]> toFloats() {
        Map<String, float[]> m = new LinkedHashMap<>();
        forEach((name, a) -> {
            float[] v = new float[a.length];
            for (int i = 0; i < a.length; i++) v[i] = (float) a[i];
            m.put(name, v);
        });
        if (ropeFreqs != null) m.put("rope_freqs.weight", ropeFreqs.clone());
        return m;
    }

    double[] head() { return output != null ? output : embedding; }

    /** The matrices transposed for {@link Linear#forward}, taken once per step. */
    Transposed transposed() { return new Transposed(this); }

    static final class Transposed {
        final double[][] wq, wk, wv, wo, gate, up, down;
        final double[] head;

        Transposed(Params p) {
            ModelConfig c = p.c;
            int L = c.layers(), dim = c.dim(), ffn = c.ffnDim();
            wq = new double[L][]; wk = new double[L][]; wv = new double[L][]; wo = new double[L][];
            gate = new double[L][]; up = new double[L][]; down = new double[L][];
            for (int l = 0; l < L; l++) {
                wq[l] = Linear.transpose(p.wq[l], c.qDim(), dim);
                wk[l] = Linear.transpose(p.wk[l], c.kvDim(), dim);
                wv[l] = Linear.transpose(p.wv[l], c.kvDim(), dim);
                wo[l] = Linear.transpose(p.wo[l], dim, c.qDim());
                gate[l] = Linear.transpose(p.gate[l], ffn, dim);
                up[l] = Linear.transpose(p.up[l], ffn, dim);
                down[l] = Linear.transpose(p.down[l], dim, ffn);
            }
            head = Linear.transpose(p.head(), c.vocabSize(), dim);
        }
    }
}
