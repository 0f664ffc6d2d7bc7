package dev.fastdms.model;

import com.fasterxml.jackson.databind.JsonNode;
import dev.fastdms.cache.DmsConfig;
import dev.fastdms.cache.KvDtype;
import dev.fastdms.model.eval.Evaluator;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The DMS golden (stories260K_dms_reference.json) as one check any backend runs, so the JVM's {@link
 * dev.fastdms.cache.DmsStep} and the device kernels that mirror it answer to the same numbers: every eviction flag,
 * argmax at every position, retained counts and CR at the last position, the cache's own live counts and CR (what it
 * holds after the pass is what the last query saw), ppl and KLD against the full cache, probe logits.
 */
public final class DmsGolden {
    private DmsGolden() {}

    private static int[] inputIds(JsonNode ref) {
        int[] ids = new int[ref.get("input_ids").size()];
        for (int i = 0; i < ids.length; i++) ids[i] = ref.get("input_ids").get(i).asInt();
        return ids;
    }

    /** The DMS parameters of one golden case. */
    private static DmsConfig dmsOf(JsonNode golden) {
        JsonNode d = golden.get("dms");
        return new DmsConfig(d.get("window").asInt(), (float) d.get("alpha_scale").asDouble(),
                (float) d.get("alpha_offset").asDouble(), DmsConfig.Convention.valueOf(d.get("convention").asText().toUpperCase()));
    }

    public static void assertReproduces(ForwardPass fp, JsonNode ref, String backend) {
        ModelConfig c = fp.config();
        int[] ids = inputIds(ref);
        int T = ids.length, V = c.vocabSize();
        float[] full = new float[T * V];
        Sequence fs = fp.newSequence(KvDtype.F32, null);
        fp.forward(fs, ids, 0, T, full, true);
        fs.kv().release();
        for (JsonNode cs : ref.get("cases")) {
            DmsConfig dms = dmsOf(cs);
            String tag = backend + " " + dms.convention() + " w=" + dms.window() + ": ";
            Sequence s = fp.newSequence(KvDtype.F32, dms);
            char[][][] flags = new char[c.layers()][c.kvHeads()][T];
            for (char[][] a : flags) for (char[] b : a) Arrays.fill(b, '0');
            s.setObserver((layer, head, pos, evict) -> flags[layer][head][pos] = evict ? '1' : '0');
            float[] logits = new float[T * V];
            fp.forward(s, ids, 0, T, logits, true);
            for (int l = 0; l < c.layers(); l++) {
                for (int h = 0; h < c.kvHeads(); h++) {
                    String want = cs.get("evict_flags").get(l).get(h).asText();
                    assertEquals(want, new String(flags[l][h], 0, want.length()), tag + "flags layer " + l + " head " + h);
                }
            }
            for (int i = 0; i < T; i++) assertEquals(cs.get("argmax").get(i).asInt(), Sampler.argmax(logits, i * V, V), tag + "argmax at " + i);
            double invCr = 0;
            for (int h = 0; h < c.kvHeads(); h++) {
                for (int l = 0; l < c.layers(); l++) {
                    int retained = 0;
                    for (int p = 0; p < T; p++) if (T - 1 - p <= dms.window() || flags[l][h][p] == '0') retained++;
                    int want = cs.get("retained_at_last_position").get(h).get(l).asInt();
                    assertEquals(want, retained, tag + "retained l" + l + " h" + h);
                    assertEquals(want, s.kv().live(l, h), tag + "slots the cache holds, l" + l + " h" + h);
                    invCr += retained / (double) T;
                }
            }
            assertEquals(cs.get("compression_ratio").asDouble(), c.layers() * c.kvHeads() / invCr, 1e-9, tag + "CR from the flags");
            assertEquals(cs.get("compression_ratio").asDouble(), s.kv().compressionRatio(), 1e-12, tag + "the cache's CR");
            double nllFull = 0, nllDms = 0, kld = 0;
            for (int i = 0; i < T - 1; i++) {
                double[] pf = Evaluator.logSoftmax(full, i * V, V), pd = Evaluator.logSoftmax(logits, i * V, V);
                nllFull -= pf[ids[i + 1]];
                nllDms -= pd[ids[i + 1]];
                for (int j = 0; j < V; j++) kld += Math.exp(pf[j]) * (pf[j] - pd[j]);
            }
            assertEquals(cs.get("ppl_full_cache").asDouble(), Math.exp(nllFull / (T - 1)), 1e-4 * cs.get("ppl_full_cache").asDouble(), tag + "ppl full");
            assertEquals(cs.get("ppl_dms").asDouble(), Math.exp(nllDms / (T - 1)), 1e-4 * cs.get("ppl_dms").asDouble(), tag + "ppl dms");
            assertEquals(cs.get("kld_full_to_dms").asDouble(), kld / (T - 1), 1e-4 * cs.get("kld_full_to_dms").asDouble(), tag + "kld");
            JsonNode probes = cs.get("probe_positions");
            for (int k = 0; k < probes.size(); k++) {
                int p = probes.get(k).asInt();
                JsonNode want = cs.get("logits_at_probe_positions").get(k);
                for (int j = 0; j < V; j++) assertEquals(want.get(j).asDouble(), logits[p * V + j], 1e-4, tag + "logit " + j + " at " + p);
            }
            s.kv().release();
        }
    }

    /**
     * The golden decoded one row per step: each step's append reclaims at its own position (a one-row step has no
     * end-of-step reclaim on the device), so after the last step the cache must hold the golden's retained counts at
     * the last position, and give its CR.
     */
    public static void assertDecodeKeepsGoldenSlots(ForwardPass fp, JsonNode ref, String backend) {
        ModelConfig c = fp.config();
        int[] ids = inputIds(ref);
        float[] logits = new float[c.vocabSize()];
        for (JsonNode cs : ref.get("cases")) {
            DmsConfig dms = dmsOf(cs);
            String tag = backend + " decode " + dms.convention() + " w=" + dms.window() + ": ";
            Sequence s = fp.newSequence(KvDtype.F32, dms);
            for (int i = 0; i < ids.length; i++) fp.forward(s, ids, i, 1, logits, false);
            for (int l = 0; l < c.layers(); l++) {
                for (int h = 0; h < c.kvHeads(); h++) {
                    assertEquals(cs.get("retained_at_last_position").get(h).get(l).asInt(), s.kv().live(l, h), tag + "slots the cache holds, l" + l + " h" + h);
                }
            }
            assertEquals(cs.get("compression_ratio").asDouble(), s.kv().compressionRatio(), 1e-12, tag + "the cache's CR");
            s.kv().release();
        }
    }
}
