package dev.fastdms.model.format;

import dev.fastdms.cache.KvDtype;
import dev.fastdms.model.ModelConfig;
import dev.fastdms.model.Sampler;
import dev.fastdms.model.TestAssets;
import dev.fastdms.model.Sequence;
import dev.fastdms.model.Transformer;
import dev.fastdms.model.Weights;
import dev.fastdms.model.tensor.GgmlType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

class SyntheticModelTest {
    @TempDir Path tmp;

    static final SyntheticModel.Shape TINY_LLAMA = new SyntheticModel.Shape("llama", 64, 2, 4, 2, 16, 128, 256, 4096, 500000f, 32f, true);
    static final SyntheticModel.Shape TINY_QWEN3 = new SyntheticModel.Shape("qwen3", 64, 2, 4, 2, 32, 96, 320, 2048, 1000000f, 0f, false);
    /** FFN rows longer than a column panel (4096): decode's down projections are copied into panels. */
    static final SyntheticModel.Shape LONG_FFN = new SyntheticModel.Shape("llama", 256, 2, 4, 2, 64, 4096 + 256, 256, 4096, 500000f, 32f, true);

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q4_0", "F16", "BF16"})
    void tinyShapeLoadsWithItsConfigAndRuns(GgmlType type) throws Exception {
        Path out = tmp.resolve("s.gguf");
        SyntheticModel.write(out, TINY_LLAMA, type, null, 3);
        try (ModelFile mf = ModelLoader.open(out)) {
            ModelConfig c = mf.config();
            assertEquals(TINY_LLAMA.config(), c);
            assertFalse(c.ropeHalf());
            assertEquals(type, mf.tensor("blk.0.attn_q.weight").type());
            assertEquals(GgmlType.F32, mf.tensor("blk.1.ffn_norm.weight").type());
            assertEquals(SyntheticModel.tensorBytes(TINY_LLAMA, type), mf.tensors().values().stream().mapToLong(t -> t.data().byteSize()).sum());
            assertArrayEquals(SyntheticModel.llama3FreqFactors(16, 500000f, 32f, 1f, 4f, 8192), new Weights(mf).ropeFreqFactors);
            float[] logits = forward(mf, new int[]{1, 7, 200});
            float spread = 0;
            for (float f : logits) { assertTrue(Float.isFinite(f)); spread = Math.max(spread, Math.abs(f)); }
            assertTrue(spread > 1e-4, "random weights give non-trivial logits");
        }
    }

    /** k-quant rows are 256-value super-blocks, so these need a shape whose every row length is a multiple of 256. */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q4_K", "Q6_K"})
    void kQuantSyntheticWeightsLoadAndRun(GgmlType type) throws Exception {
        SyntheticModel.Shape shape = new SyntheticModel.Shape("llama", 256, 2, 4, 2, 64, 512, 300, 4096, 500000f, 32f, true);
        Path out = tmp.resolve("k.gguf");
        SyntheticModel.write(out, shape, type, null, 5);
        try (ModelFile mf = ModelLoader.open(out)) {
            assertEquals(type, mf.tensor("blk.1.ffn_down.weight").type());
            assertEquals(SyntheticModel.tensorBytes(shape, type), mf.tensors().values().stream().mapToLong(t -> t.data().byteSize()).sum());
            float[] logits = forward(mf, new int[]{1, 7, 200});
            float spread = 0;
            for (float f : logits) { assertTrue(Float.isFinite(f)); spread = Math.max(spread, Math.abs(f)); }
            assertTrue(spread > 1e-4, "random weights give non-trivial logits");
        }
        assertEquals(type, SyntheticModel.type(type.name().toLowerCase()));
    }

    /**
     * q4_k_m gives llama-quantize's Q4_K_M assignment: of 16 layers, attn_v and ffn_down are Q6_K in layers 0, 1, 4,
     * 7, 10, 13, 14 and 15 (first and last eighth, every third between), the tied embedding is Q6_K, the rest Q4_K;
     * the file holds what tensorBytes says, and the model runs.
     */
    @Test
    void q4KmMixesQ6KWhereLlamaQuantizeDoes() throws Exception {
        SyntheticModel.Shape shape = new SyntheticModel.Shape("llama", 256, 16, 4, 2, 64, 512, 300, 4096, 500000f, 32f, true);
        Path out = tmp.resolve("km.gguf");
        SyntheticModel.Types types = SyntheticModel.Types.named("Q4_K_M");
        SyntheticModel.write(out, shape, types, null, 5);
        java.util.Set<Integer> q6 = java.util.Set.of(0, 1, 4, 7, 10, 13, 14, 15);
        try (ModelFile mf = ModelLoader.open(out)) {
            assertEquals(GgmlType.Q6_K, mf.tensor("token_embd.weight").type());
            for (int l = 0; l < 16; l++) {
                GgmlType more = q6.contains(l) ? GgmlType.Q6_K : GgmlType.Q4_K;
                assertEquals(more, mf.tensor("blk." + l + ".attn_v.weight").type(), "attn_v " + l);
                assertEquals(more, mf.tensor("blk." + l + ".ffn_down.weight").type(), "ffn_down " + l);
                for (String m : new String[]{"attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up"}) {
                    assertEquals(GgmlType.Q4_K, mf.tensor("blk." + l + "." + m + ".weight").type(), m + " " + l);
                }
            }
            assertEquals(SyntheticModel.tensorBytes(shape, types), mf.tensors().values().stream().mapToLong(t -> t.data().byteSize()).sum());
            float[] logits = forward(mf, new int[]{1, 7, 200});
            for (float f : logits) assertTrue(Float.isFinite(f));
        }
        assertThrows(IllegalArgumentException.class, () -> SyntheticModel.Types.named("q5_k_m"));
    }

    /**
     * An FFN longer than a column panel: decode (one row at a time, from its own copies of the matrices: the down
     * projection in column panels, k-quants re-laid) gives the logits that one batched pass over the same tokens
     * gives (the stored matrices, in the outer-product GEMM): each logit to float rounding, or, where decode's
     * kernels multiply x rounded to int8 (Q4_0, Q4_K, Q6_K, as llama.cpp's do), with a normalised squared error below
     * 0.05 at every position. Each such product is off by about 4e-5 (TensorTypesTest bounds it per row); through
     * this random model's two layers that grew to at most 5e-3 (Q4_K; Q4_0 3e-6), while a weight or scale matched to
     * the wrong x gives errors near 1.
     */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q4_0", "Q4_K", "Q6_K"})
    void longFfnRowsDecodeLikeABatchedPass(GgmlType type) throws Exception {
        Path out = tmp.resolve("long.gguf");
        SyntheticModel.write(out, LONG_FFN, type, null, 9);
        int[] ids = new int[20];
        for (int i = 0; i < ids.length; i++) ids[i] = (i * 37 + 11) % 256;
        try (ModelFile mf = ModelLoader.open(out)) {
            ModelConfig c = mf.config();
            int V = c.vocabSize();
            Transformer t = new Transformer(c, new Weights(mf), 32);
            float[] batched = new float[ids.length * V], step = new float[V];
            t.forward(t.newSequence(KvDtype.F32, null), ids, 0, ids.length, batched, true);
            var s = t.newSequence(KvDtype.F32, null);
            for (int i = 0; i < ids.length; i++) {
                t.forward(s, ids, i, 1, step, false);
                if (type != GgmlType.Q8_0) {
                    double err = 0, norm = 0;
                    for (int v = 0; v < V; v++) {
                        double d = batched[i * V + v] - step[v];
                        err += d * d;
                        norm += (double) batched[i * V + v] * batched[i * V + v];
                    }
                    assertTrue(err / norm < 0.05, "normalised squared error " + err / norm + " at " + i);
                } else {
                    for (int v = 0; v < V; v++) assertEquals(batched[i * V + v], step[v], 2e-4 * (1 + Math.abs(step[v])), "logit " + v + " at " + i);
                }
            }
        }
    }

    /**
     * Sequences decoded together (one row each in steps of 2 and 3 rows, as serve's scheduler runs them) get, bit for
     * bit, the logits each gets decoded alone: where decode's products round x to int8 (Q4_0, Q4_K, Q6_K), a step of
     * a few rows multiplies the same copies, each row's x rounded as a lone row's, and the long FFN rows' column
     * panels are summed in the same order. A 1-row step that asks for every row's logits gets them too.
     */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q4_0", "Q4_K", "Q6_K"})
    void sequencesDecodedTogetherGetTheirLoneBits(GgmlType type) throws Exception {
        Path out = tmp.resolve("together.gguf");
        SyntheticModel.write(out, LONG_FFN, type, null, 5);
        int seqs = 3, steps = 4;
        try (ModelFile mf = ModelLoader.open(out)) {
            ModelConfig c = mf.config();
            int V = c.vocabSize();
            Transformer alone = new Transformer(c, new Weights(mf), 32), together = new Transformer(c, new Weights(mf), 32);
            alone.prepareDecode(dev.fastdms.model.ProgressListener.NONE);
            together.prepareDecode(dev.fastdms.model.ProgressListener.NONE);
            int[][] toks = new int[seqs][steps];
            for (int s = 0; s < seqs; s++) for (int i = 0; i < steps; i++) toks[s][i] = (i * 37 + s * 11 + 5) % V;
            float[][][] want = new float[seqs][steps][V];
            for (int s = 0; s < seqs; s++) {
                var seq = alone.newSequence(KvDtype.F32, null);
                for (int i = 0; i < steps; i++) alone.forward(seq, toks[s], i, 1, want[s][i], false);
            }
            Sequence[] ss = new Sequence[seqs];
            for (int s = 0; s < seqs; s++) ss[s] = together.newSequence(KvDtype.F32, null);
            float[] got = new float[seqs * V];
            for (int i = 0; i < steps; i++) {
                int n = i % 2 == 0 ? seqs : 2; // the third sequence sits out odd steps
                if (n == 2) { // ... and catches up alone, asking for every row's logits
                    together.forwardRows(new Sequence[]{ss[2]}, new int[]{toks[2][i]}, 1, got, 0, true);
                    for (int v = 0; v < V; v++) assertEquals(Float.floatToIntBits(want[2][i][v]), Float.floatToIntBits(got[v]), "sequence 2 alone, step " + i + ", logit " + v);
                }
                int[] row = new int[n];
                for (int s = 0; s < n; s++) row[s] = toks[s][i];
                together.forwardRows(java.util.Arrays.copyOf(ss, n), row, n, got, 0, true);
                for (int s = 0; s < n; s++) {
                    for (int v = 0; v < V; v++) {
                        assertEquals(Float.floatToIntBits(want[s][i][v]), Float.floatToIntBits(got[s * V + v]), "sequence " + s + ", step " + i + ", logit " + v);
                    }
                }
            }
        }
    }

    /**
     * prepareDecode makes every decode copy at once, as many bytes as decodeCopyBytes (what inspect prints) says, so
     * the decode steps after it copy nothing; they give the same logits, bit for bit, as decode that copies lazily.
     */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q4_0", "Q4_K", "Q6_K"})
    void preparedDecodeCopiesEverythingUpFront(GgmlType type) throws Exception {
        Path out = tmp.resolve("prep.gguf");
        SyntheticModel.write(out, LONG_FFN, type, null, 4);
        int[] ids = {3, 250, 17, 99, 128};
        try (ModelFile mf = ModelLoader.open(out)) {
            ModelConfig c = mf.config();
            int V = c.vocabSize();
            Transformer lazy = new Transformer(c, new Weights(mf), 32), prepared = new Transformer(c, new Weights(mf), 32);
            long before = dev.fastdms.model.tensor.DecodeLayout.bytesCopiedSoFar();
            long[] progress = {-1, -1};
            prepared.prepareDecode(new dev.fastdms.model.ProgressListener() {
                @Override public void start(String task, long total) { progress[0] = total; }
                @Override public void advance(long done) { progress[1] = done; }
                @Override public void end() {}
            });
            long copied = dev.fastdms.model.tensor.DecodeLayout.bytesCopiedSoFar() - before;
            assertTrue(prepared.decodeCopyBytes() > 0, "this shape has long rows" + (type == GgmlType.Q4_K ? " and k-quants" : ""));
            assertEquals(prepared.decodeCopyBytes(), copied);
            assertEquals(c.layers() + 1, progress[0]);
            assertEquals(c.layers() + 1, progress[1]);
            var sp = prepared.newSequence(KvDtype.F32, null);
            var sl = lazy.newSequence(KvDtype.F32, null);
            float[] a = new float[V], b = new float[V];
            for (int i = 0; i < ids.length; i++) {
                long mark = dev.fastdms.model.tensor.DecodeLayout.bytesCopiedSoFar();
                prepared.forward(sp, ids, i, 1, a, false);
                assertEquals(mark, dev.fastdms.model.tensor.DecodeLayout.bytesCopiedSoFar(), "a prepared step copies nothing");
                lazy.forward(sl, ids, i, 1, b, false);
                assertArrayEquals(b, a, "step " + i);
            }
        }
    }

    @Test
    void qwen3ShapeHasQkNormsAndItsOwnHead() throws Exception {
        Path out = tmp.resolve("q.gguf");
        SyntheticModel.write(out, TINY_QWEN3, GgmlType.Q8_0, null, 1);
        try (ModelFile mf = ModelLoader.open(out)) {
            ModelConfig c = mf.config();
            assertEquals(TINY_QWEN3.config(), c);
            assertTrue(c.qkNorm() && c.ropeHalf() && !c.tiedEmbeddings());
            assertEquals(1e-6f, c.rmsEps());
            assertArrayEquals(new long[]{32}, mf.tensor("blk.1.attn_k_norm.weight").shape());
            assertArrayEquals(new long[]{320, 64}, mf.tensor("output.weight").shape());
            assertNull(mf.optionalTensor("rope_freqs.weight"));
            for (float f : forward(mf, new int[]{5, 6})) assertTrue(Float.isFinite(f));
        }
        // the same seed gives the same file
        Path again = tmp.resolve("q2.gguf");
        SyntheticModel.write(again, TINY_QWEN3, GgmlType.Q8_0, null, 1);
        assertEquals(-1L, Files.mismatch(out, again));
    }

    /** A tokenizer.json becomes GGUF tokenizer metadata (llama.cpp layout, ids stored as uint32). */
    @Test
    void tokenizerIsEmbedded() throws Exception {
        var shape = new SyntheticModel.Shape("llama", 32, 1, 2, 1, 16, 64, 128300, 1024, 500000f, 0f, true);
        Path out = tmp.resolve("t.gguf");
        Path tj = TestAssets.asset("tokenizers/llama3/tokenizer.json");
        SyntheticModel.write(out, shape, GgmlType.Q8_0, tj, 3);
        try (GGUF g = GGUF.open(out)) {
            assertEquals("gpt2", g.metadata().get("tokenizer.ggml.model"));
            assertEquals("llama-bpe", g.metadata().get("tokenizer.ggml.pre"));
            assertEquals(GGUF.ValueType.UINT32, g.valueType("tokenizer.ggml.bos_token_id"));
            assertEquals(GGUF.ValueType.UINT32, g.valueType("llama.block_count"));
            assertTrue(g.metadata().get("tokenizer.chat_template") instanceof String);
        }
        try (ModelFile mf = ModelLoader.open(out)) {
            var md = mf.metadata();
            String[] tokens = (String[]) md.get("tokenizer.ggml.tokens");
            int[] types = (int[]) md.get("tokenizer.ggml.token_type");
            assertEquals(128300, tokens.length, "padded to the model's vocabulary");
            assertEquals("Hello", tokens[9906]);
            assertEquals(1, types[9906]);
            assertEquals(3, types[128000], "added special tokens are control tokens");
            assertEquals(280147, ((String[]) md.get("tokenizer.ggml.merges")).length);
            assertEquals(128000L, md.get("tokenizer.ggml.bos_token_id"));
        }
    }

    /** Real shapes: configs as published, and file sizes as expected (nothing of that size is written here). */
    @Test
    void realShapes() {
        ModelConfig l1 = SyntheticModel.Shape.LLAMA_3_2_1B.config();
        assertEquals(new ModelConfig("llama", 2048, 16, 32, 8, 64, 8192, 128256, 131072, 1e-5f, 500000f, null, false, true, false, null), l1);
        ModelConfig q = SyntheticModel.Shape.QWEN3_8B.config();
        assertEquals(128, q.headDim());
        assertEquals(4096, q.qDim());
        assertTrue(q.qkNorm() && !q.tiedEmbeddings());
        long b1 = SyntheticModel.tensorBytes(SyntheticModel.Shape.LLAMA_3_2_1B, GgmlType.Q8_0);
        assertTrue(b1 > 1.25e9 && b1 < 1.4e9, "Llama 3.2 1B Q8_0 is about 1.3 GB: " + b1);
        long b8 = SyntheticModel.tensorBytes(SyntheticModel.Shape.LLAMA_3_1_8B, GgmlType.Q8_0);
        assertTrue(b8 > 8.0e9 && b8 < 8.7e9, "Llama 3.1 8B Q8_0 is about 8.5 GB: " + b8);
        long bf = SyntheticModel.tensorBytes(SyntheticModel.Shape.LLAMA_3_2_3B, GgmlType.BF16);
        assertTrue(bf > 6.2e9 && bf < 6.7e9, "Llama 3.2 3B BF16 is about 6.4 GB: " + bf);
        assertEquals(SyntheticModel.Shape.QWEN3_8B, SyntheticModel.Shape.named("Qwen3-8B"));
        assertEquals(GgmlType.Q4_0, SyntheticModel.type("q4_0"));
        float[] f = SyntheticModel.llama3FreqFactors(64, 500000f, 32f, 1f, 4f, 8192);
        assertEquals(1f, f[0]);
        assertEquals(32f, f[31]);
        for (int i = 1; i < f.length; i++) assertTrue(f[i] >= f[i - 1], "divisors grow with wavelength");
    }

    private static float[] forward(ModelFile mf, int[] ids) {
        ModelConfig c = mf.config();
        Transformer t = new Transformer(c, new Weights(mf), 8);
        float[] logits = new float[c.vocabSize()];
        t.forward(t.newSequence(KvDtype.F32, null), ids, 0, ids.length, logits, false);
        return logits;
    }
}
