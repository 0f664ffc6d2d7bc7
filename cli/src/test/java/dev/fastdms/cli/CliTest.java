package dev.fastdms.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.*;

class CliTest {
    record Run(int code, String out, String err) {}

    static Run run(String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        int code = Main.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
        return new Run(code, out.toString(), err.toString());
    }

    static Path asset(String rel) {
        return Path.of(System.getProperty("fastdms.root", ".")).resolve("../shared/assets").resolve(rel).normalize();
    }

    static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void generateJsonWithNoPromptFollowsTheGreedyGolden() throws Exception {
        long t0 = System.nanoTime();
        Run r = run("generate", "-n", "40", "--json", "--no-progress");
        double wall = (System.nanoTime() - t0) / 1e9;
        assertEquals(0, r.code(), r.err());
        JsonNode o = JSON.readTree(r.out());
        for (String k : new String[]{"prompt_ids", "ids", "text", "load_seconds", "prefill_tokens_per_s", "decode_tokens_per_s"}) assertTrue(o.has(k), k);
        // loading (and the decode copies) took some time, less than the test's whole run
        double load = o.get("load_seconds").asDouble();
        assertTrue(load > 0 && load < wall, load + " s of " + wall);
        assertEquals("[1]", o.get("prompt_ids").toString());
        JsonNode golden = JSON.readTree(asset("reference/stories260K_greedy_reference.json").toFile()).get("greedy_token_ids");
        for (int i = 0; i < 40; i++) assertEquals(golden.get(i).asInt(), o.get("ids").get(i).asInt(), "token " + i);
        assertTrue(o.get("text").asText().startsWith("Once upon a time"), o.get("text").asText());
    }

    @Test
    void streamsTextAndSameSeedGivesSameText() {
        Run a = run("generate", "-p", "Once upon a time", "-n", "30", "--temperature", "0.9", "--top-p", "0.95", "--seed", "42");
        Run b = run("generate", "-p", "Once upon a time", "-n", "30", "--temperature", "0.9", "--top-p", "0.95", "--seed", "42");
        Run c = run("generate", "-p", "Once upon a time", "-n", "30", "--temperature", "0.9", "--top-p", "0.95", "--seed", "7");
        assertEquals(0, a.code(), a.err());
        assertEquals(a.out(), b.out());
        assertNotEquals(a.out(), c.out());
        assertTrue(a.out().length() > 40);
        // right after BOS the SentencePiece space prefix is not printed (as llama2.c does)
        assertTrue(run("generate", "-n", "8").out().startsWith("Once upon a time"));
    }

    @Test
    void modelFormatsAndPromptFile(@TempDir Path tmp) throws Exception {
        Path pf = tmp.resolve("p.txt");
        Files.writeString(pf, "Lily saw a cat");
        Run bin = run("generate", "-m", asset("models/stories260K/stories260K.bin").toString(), "--prompt-file", pf.toString(), "-n", "20", "--json");
        Run gguf = run("generate", "--prompt-file", pf.toString(), "-n", "20", "--json");
        assertEquals(0, bin.code(), bin.err());
        assertEquals(JSON.readTree(gguf.out()).get("ids"), JSON.readTree(bin.out()).get("ids"));
    }

    @Test
    void badInputIsOneLineAndNonZero(@TempDir Path tmp) throws Exception {
        Path corrupt = tmp.resolve("bad.gguf");
        byte[] full = Files.readAllBytes(asset("models/stories260K/stories260K-f32.gguf"));
        Files.write(corrupt, Arrays.copyOf(full, 3000));
        Object[][] cases = {
                {new String[]{"generate", "--bogus"}, 2, "Unknown option"},
                {new String[]{"generate", "-n", "abc"}, 2, "Invalid value"},
                {new String[]{"generate", "-m", tmp.resolve("missing.gguf").toString()}, 2, "no such model"},
                {new String[]{"generate", "-m", corrupt.toString()}, 3, "truncated"},
                {new String[]{"generate", "--temperature", "-2"}, 2, "temperature"},
                {new String[]{"generate", "--backend", "cuda"}, 2, "unknown --backend"},
                {new String[]{"generate", "--kv-dtype", "int3"}, 2, "unknown --kv-dtype"},
                {new String[]{"generate", "--ctx", "100000"}, 2, "exceeds the model's context"},
                {new String[]{"generate", "--ctx", "8", "-p", "Once upon a time there was a little girl"}, 4, "context overflow"},
                {new String[]{"eval"}, 2, "exactly one of --text or --token-ids"},
                {new String[]{"eval", "--token-ids", corrupt.toString()}, 2, "not a JSON array"},
                {new String[]{"eval", "--text", "/nonexistent"}, 2, "no such file"},
                {new String[]{"eval", "--token-ids", asset("models/tiny-qwen3-hf/golden.json").toString(), "--compare", "lru:w=3"}, 2, "not a JSON array"},
                {new String[]{"synth", "--shape", "gpt-5", "-o", tmp.resolve("x.gguf").toString()}, 2, "unknown shape gpt-5"},
                {new String[]{"synth", "--shape", "llama-3.2-1b", "--type", "q5_k_m", "-o", tmp.resolve("x.gguf").toString()}, 2, "unknown type q5_k_m (q8_0, q4_0, q4_k, q4_k_m,"},
        };
        for (Object[] c : cases) {
            Run r = run((String[]) c[0]);
            String what = String.join(" ", (String[]) c[0]);
            assertEquals((int) c[1], r.code(), what + " -> " + r.err());
            assertTrue(r.err().contains((String) c[2]), what + " -> " + r.err());
            assertEquals(1, r.err().strip().lines().count(), what + " printed more than one line: " + r.err());
            assertFalse(r.err().contains("Exception") || r.err().contains("\tat "), what + " printed a stack trace");
        }
    }

    @Test
    void generationStopsAtTheContextLimit() throws Exception {
        Run r = run("generate", "--ctx", "24", "-n", "100", "--json");
        assertEquals(0, r.code(), r.err());
        JsonNode o = JSON.readTree(r.out());
        assertEquals("context_full", o.get("stop_reason").asText());
        // every token but the last sampled one went through the model: exactly the 24 positions of the context
        assertEquals(24, o.get("prompt_ids").size() + o.get("ids").size() - 1);
    }

    @Test
    void dmsCheckpointEvictsByDefaultAndPolicyNoneTurnsItOff() throws Exception {
        String m = asset("models/tiny-qwen3-hf").toString();
        Run on = run("generate", "-m", m, "-n", "60", "--json");
        Run off = run("generate", "-m", m, "-n", "60", "--json", "--kv-policy", "none");
        assertEquals(0, on.code(), on.err());
        assertEquals(0, off.code(), off.err());
        assertTrue(JSON.readTree(on.out()).get("compression_ratio").asDouble() > 1.0, on.out());
        assertEquals(1.0, JSON.readTree(off.out()).get("compression_ratio").asDouble(), 1e-12);
        Run pol = run("generate", "-n", "40", "--json", "--kv-policy", "h2o", "--kv-tokens", "20", "--kv-dtype", "q8");
        assertEquals(0, pol.code(), pol.err());
        // BOS + 39 fed tokens (the 40th sampled token is not fed) seen, 20 kept per head
        assertEquals(40.0 / 20, JSON.readTree(pol.out()).get("compression_ratio").asDouble(), 1e-9);
        JsonNode live = JSON.readTree(pol.out()).get("kv_live");
        assertEquals(5, live.size());
        for (JsonNode layer : live) { assertEquals(4, layer.size()); for (JsonNode h : layer) assertEquals(20, h.asInt()); }
        assertEquals(40L * 2 * 5 * 4 * 8 * 2, JSON.readTree(pol.out()).get("kv_bytes_dense_bf16").asLong());
        Run need = run("generate", "--kv-policy", "knorm");
        assertEquals(2, need.code());
        assertTrue(need.err().contains("needs --kv-target-cr or --kv-tokens"), need.err());
        Run budget = run("generate", "-n", "300", "--kv-budget", "20K");
        assertEquals(5, budget.code(), budget.err());
        assertTrue(budget.err().contains("KV cache budget exceeded"), budget.err());
        assertEquals(1, budget.err().strip().lines().count(), budget.err());
    }

    @Test
    void inspectDescribesTheModel() throws Exception {
        Run r = run("inspect", "--json");
        assertEquals(0, r.code(), r.err());
        JsonNode o = JSON.readTree(r.out());
        assertEquals("llama", o.get("config").get("architecture").asText());
        assertEquals(4, o.get("config").get("kvHeads").asInt());
        assertEquals(1, o.get("tensor_types").size());
        assertTrue(o.get("tokenizer").asText().contains("512 tokens"));
        Run text = run("inspect", "-m", asset("models/tiny-qwen3-hf").toString());
        assertEquals(0, text.code(), text.err());
        assertTrue(text.out().contains("qwen3") && text.out().contains("window 16") && text.out().contains("BF16"), text.out());
    }

    /**
     * inspect reports the /dev/shm bytes of decode's copies, counted here from the file's own tensor list: Q4_K
     * matrices take 192 bytes per 144, Q6_K 320 per 210, other rows longer than a column panel (4096) their stored size;
     * the embedding only as the tied output matrix. stories260K (F32, short rows) has none.
     */
    @Test
    void inspectReportsDecodeCopies(@TempDir Path tmp) throws Exception {
        var shape = new dev.fastdms.model.format.SyntheticModel.Shape("llama", 256, 8, 4, 2, 64, 4096 + 256, 300, 4096, 500000f, 32f, true);
        for (String type : new String[]{"q4_k_m", "q8_0"}) {
            Path f = tmp.resolve(type + ".gguf");
            dev.fastdms.model.format.SyntheticModel.write(f, shape, dev.fastdms.model.format.SyntheticModel.Types.named(type), null, 3);
            Run r = run("inspect", "-m", f.toString(), "--json");
            assertEquals(0, r.code(), r.err());
            long want = 0;
            try (var mf = dev.fastdms.model.format.ModelLoader.open(f)) {
                for (var t : mf.tensors().values()) {
                    String n = t.name();
                    boolean decoded = n.matches("blk\\.\\d+\\.(attn_(q|k|v|output)|ffn_(gate|up|down))\\.weight") || n.equals("token_embd.weight");
                    long bytes = t.data().byteSize();
                    if (!decoded) continue;
                    switch (t.type()) {
                        case Q4_K -> want += bytes / 144 * 192;
                        case Q6_K -> want += bytes / 210 * 320;
                        default -> want += t.cols() > 4096 ? bytes : 0;
                    }
                }
            }
            assertTrue(want > 0);
            assertEquals(want, JSON.readTree(r.out()).get("decode_copy_bytes").asLong(), type);
            assertTrue(run("inspect", "-m", f.toString()).out().contains("decode copies " + InspectCommand.human(want) + " in /dev/shm"), type);
        }
        Run none = run("inspect", "--json");
        assertEquals(0, JSON.readTree(none.out()).get("decode_copy_bytes").asLong());
        assertFalse(run("inspect").out().contains("decode copies"));
    }

    @Test
    void evalReproducesTheDmsGoldenThroughTheCli(@TempDir Path tmp) throws Exception {
        JsonNode ref = JSON.readTree(asset("reference/stories260K_dms_reference.json").toFile());
        Path ids = tmp.resolve("ids.json");
        Files.writeString(ids, ref.get("input_ids").toString());
        Run r = run("eval", "--token-ids", ids.toString(), "--kv-policy", "dms", "--dms-window", "16", "--json",
                "--compare", "dms:w=64", "none:dtype=f32");
        assertEquals(0, r.code(), r.err());
        JsonNode res = JSON.readTree(r.out()).get("results");
        assertEquals(3, res.size());
        for (int i = 0; i < 2; i++) {
            JsonNode want = ref.get("cases").get(i), got = res.get(i);
            for (String k : new String[]{"config", "ppl", "ppl_full", "kld", "token_match", "compression_ratio", "kv_bytes", "kv_bytes_dense_bf16"}) assertTrue(got.has(k), k);
            assertEquals(want.get("ppl_dms").asDouble(), got.get("ppl").asDouble(), 1e-4 * got.get("ppl").asDouble());
            assertEquals(want.get("ppl_full_cache").asDouble(), got.get("ppl_full").asDouble(), 1e-4 * got.get("ppl_full").asDouble());
            assertEquals(want.get("kld_full_to_dms").asDouble(), got.get("kld").asDouble(), 1e-4 * got.get("kld").asDouble());
            // the number the user sees is the golden's: keys visible to the last query
            assertEquals(want.get("compression_ratio").asDouble(), got.get("compression_ratio").asDouble(), 1e-12);
        }
        assertEquals(0.0, res.get(2).get("kld").asDouble(), 1e-12);
        assertEquals(1.0, res.get(2).get("token_match").asDouble());
    }
}
