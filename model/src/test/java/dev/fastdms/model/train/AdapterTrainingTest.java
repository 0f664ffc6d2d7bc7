package dev.fastdms.model.train;

import dev.fastdms.cache.KvDtype;
import dev.fastdms.model.Sequence;
import dev.fastdms.model.TestAssets;
import dev.fastdms.model.Transformer;
import dev.fastdms.model.Weights;
import dev.fastdms.model.format.CheckpointWriter;
import dev.fastdms.model.format.ModelFile;
import dev.fastdms.model.format.ModelLoader;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The separate decision adapter ({@link TrainOptions.Decision#ADAPTER}): the untrained student is the teacher, a short
 * run on stories260K moves the eviction rate toward the target, and the written checkpoint makes the trainer's hard
 * decisions in the engine.
 */
class AdapterTrainingTest {
    static final int[] TOKENS = EngineAgreementTest.TOKENS;

    @Test
    void untrainedStudentIsTheTeacher() {
        for (String model : new String[]{"models/stories260K/stories260K.bin", "models/tiny-qwen3-hf"}) {
            try (ModelFile mf = ModelLoader.open(TestAssets.asset(model))) {
                var c = mf.config();
                int T = TOKENS.length, window = 2;
                TrainOptions o = new TrainOptions(1, window, 1, T, 1, 1e-3, 0, 1, 1, TrainOptions.Decision.ADAPTER);
                DmsTrainer trainer = new DmsTrainer(mf, TOKENS, o);
                Params s = trainer.student(), t = trainer.teacher();
                assertTrue(s.hasAdapter() && !t.hasAdapter(), model);
                for (int l = 0; l < c.layers(); l++) {
                    for (double v : s.dmsAlpha[l]) assertEquals(0, v);
                    for (double v : s.dmsAlphaBias[l]) assertEquals(0, v);
                    for (double v : s.dmsAlphaNorm[l]) assertEquals(1, v);
                }
                Map<String, float[]> out = trainer.tensors();
                for (int l = 0; l < c.layers(); l++) {
                    assertEquals(c.kvHeads() * c.dim(), out.get("blk." + l + ".dms_alpha.weight").length);
                    assertEquals(c.kvHeads(), out.get("blk." + l + ".dms_alpha.bias").length);
                    assertEquals(c.dim(), out.get("blk." + l + ".dms_alpha_norm.weight").length);
                }

                SequencePass teacher = new SequencePass(c, t.ropeFreqs, T, null, window);
                teacher.forward(t, t.transposed(), TOKENS, 0, null);
                GumbelDecision d = new GumbelDecision(trainer.dms().alphaScale(), trainer.dms().alphaOffset(), GumbelDecision.TAU);
                double[] hard = new double[c.layers() * T * c.kvHeads()]; // no noise: the inference decisions
                SequencePass student = new SequencePass(c, s.ropeFreqs, T, d, window, true);
                student.forward(s, s.transposed(), TOKENS, 0, hard);
                double maxAbs = 0;
                for (double v : teacher.logits) maxAbs = Math.max(maxAbs, Math.abs(v));
                for (int i = 0; i < teacher.logits.length; i++) assertEquals(teacher.logits[i], student.logits[i], 1e-12 * maxAbs, model + " logit " + i);
                for (double[] dl : student.dec) for (double v : dl) assertEquals(-trainer.dms().alphaOffset(), d.logit(v), 1e-12);

                // the borrowed channel, by contrast, changes the model from the start (it zeroes a query channel)
                SequencePass channel = new SequencePass(c, t.ropeFreqs, T, d, window);
                channel.forward(t, t.transposed(), TOKENS, 0, hard);
                double diff = 0;
                for (int i = 0; i < teacher.logits.length; i++) diff = Math.max(diff, Math.abs(teacher.logits[i] - channel.logits[i]));
                assertTrue(diff > 1e-6 * maxAbs, model + ": channel mode differs by " + diff);
            }
        }
    }

    /** A Hugging Face source gives a directory whose safetensors carry the adapter under its HF names, read back as trained. */
    @Test
    void huggingFaceCheckpointCarriesTheAdapter(@TempDir Path dir) throws Exception {
        try (ModelFile mf = ModelLoader.open(TestAssets.asset("models/tiny-qwen3-hf"))) {
            int[] data = new java.util.SplittableRandom(2).ints(200, 0, mf.config().vocabSize()).toArray();
            DmsTrainer trainer = new DmsTrainer(mf, data, new TrainOptions(2, 4, 3, 16, 2, 1e-2, 0.1, 1, 1, TrainOptions.Decision.ADAPTER));
            for (int s = 0; s < 3; s++) trainer.step();
            Map<String, float[]> tensors = trainer.tensors();
            Path out = dir.resolve("hf");
            CheckpointWriter.write(mf, tensors, trainer.dms(), out);
            try (ModelFile ck = ModelLoader.open(out)) {
                Weights w = new Weights(ck);
                assertNotNull(w.dmsAlpha);
                boolean trained = false;
                for (int l = 0; l < mf.config().layers(); l++) {
                    float[] a = tensors.get("blk." + l + ".dms_alpha.weight");
                    assertArrayEquals(a, w.dmsAlpha[l], "layer " + l);
                    assertArrayEquals(tensors.get("blk." + l + ".dms_alpha.bias"), w.dmsAlphaBias[l]);
                    assertArrayEquals(tensors.get("blk." + l + ".dms_alpha_norm.weight"), w.dmsAlphaNorm[l]);
                    for (float v : a) trained |= v != 0;
                }
                assertTrue(trained, "the adapter moved from zero");
                assertEquals(4, ck.config().dms().window());
            }
        }
    }

    @Test
    void shortRunMovesEvictionTowardTheTargetAndTheEngineDecidesAsTheTrainer(@TempDir Path dir) throws Exception {
        try (ModelFile mf = ModelLoader.open(TestAssets.asset("models/stories260K/stories260K.bin"))) {
            var c = mf.config();
            int[] all = TrainingRunTest.text(mf, 1500);
            int T = 64;
            int[] train = Arrays.copyOf(all, 1500 - T), held = Arrays.copyOfRange(all, 1500 - T, 1500);
            TrainOptions o = new TrainOptions(4, 4, 60, T, 4, 3e-3, 0.01, 1, 2, TrainOptions.Decision.ADAPTER);
            DmsTrainer trainer = new DmsTrainer(mf, train, o);
            double firstKl = 0, lastKl = 0, firstEviction = 0, lastEviction = 0, target = 0;
            for (int s = 0; s < o.steps(); s++) {
                TrainStats st = trainer.step();
                assertTrue(Double.isFinite(st.loss()) && st.compressionRatio() >= 1, st.toString());
                if (s < 5) { firstKl += st.kl() / 5; firstEviction += st.evictionRate() / 5; }
                if (s >= o.steps() - 5) { lastKl += st.kl() / 5; lastEviction += st.evictionRate() / 5; target = st.targetEvictionRate(); }
            }
            System.out.printf("adapter run: KL %.4f -> %.4f, eviction %.3f -> %.3f (target %.3f)%n", firstKl, lastKl, firstEviction, lastEviction, target);
            assertEquals(EvictionTarget.rate(4, 4, 64), target, 1e-12);
            assertTrue(target - lastEviction < target - firstEviction - 0.1, "eviction rate " + firstEviction + " -> " + lastEviction + ", target " + target);
            assertTrue(Double.isFinite(lastKl));

            // the checkpoint carries exactly the trained adapter
            Map<String, float[]> tensors = trainer.tensors();
            Path out = dir.resolve("adapter.gguf");
            CheckpointWriter.write(mf, tensors, trainer.dms(), out);
            try (ModelFile ck = ModelLoader.open(out)) {
                for (int l = 0; l < c.layers(); l++) {
                    for (String n : new String[]{"dms_alpha.weight", "dms_alpha.bias", "dms_alpha_norm.weight"}) {
                        String name = "blk." + l + "." + n;
                        assertArrayEquals(tensors.get(name), ck.tensor(name).floats(), name);
                    }
                }
                assertEquals(trainer.dms().window(), ck.config().dms().window());

                // the engine's hard decisions on held-out tokens are the trainer's (logit > 0 evicts)
                Weights w = new Weights(ck);
                assertNotNull(w.dmsAlpha);
                Transformer engine = new Transformer(ck.config(), w, 16);
                Sequence seq = engine.newSequence(KvDtype.F32, ck.config().dms());
                int L = c.layers(), kvh = c.kvHeads();
                int[][][] flags = new int[L][kvh][T];
                for (int[][] a : flags) for (int[] b : a) Arrays.fill(b, -1);
                seq.setObserver((layer, head, pos, evict) -> flags[layer][head][pos] = evict ? 1 : 0);
                engine.forward(seq, held, 0, T, new float[T * c.vocabSize()], true);

                Params s = trainer.student();
                GumbelDecision d = new GumbelDecision(trainer.dms().alphaScale(), trainer.dms().alphaOffset(), GumbelDecision.TAU);
                SequencePass pass = new SequencePass(c, s.ropeFreqs, T, d, o.window(), true);
                pass.forward(s, s.transposed(), held, 0, new double[L * T * kvh]);
                int evicted = 0, close = 0;
                for (int l = 0; l < L; l++) {
                    for (int g = 0; g < kvh; g++) {
                        for (int p = 0; p + 1 < T; p++) {
                            double logit = d.logit(pass.dec[l][(p + 1) * kvh + g]);
                            boolean want = logit > 0;
                            if (want) evicted++;
                            // float vs double: only a logit within rounding of 0 may go either way
                            if (Math.abs(logit) < 1e-2) { close++; continue; }
                            assertEquals(want ? 1 : 0, flags[l][g][p], "layer " + l + " head " + g + " key " + p + " (logit " + logit + ")");
                        }
                    }
                }
                int n = L * kvh * (T - 1);
                assertTrue(close < n / 100, close + " decisions at the boundary");
                assertTrue(evicted > n / 10 && evicted < n, "the trained adapter makes both decisions: " + evicted + " of " + n);
            }
        }
    }
}
