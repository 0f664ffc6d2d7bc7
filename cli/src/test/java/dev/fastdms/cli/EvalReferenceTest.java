package dev.fastdms.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.fastdms.model.format.GGUF;
import dev.fastdms.model.format.GGUFWriter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.IntStream;

import static dev.fastdms.cli.CliTest.JSON;
import static dev.fastdms.cli.CliTest.asset;
import static dev.fastdms.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.*;

/** eval --reference-model: the full-cache baseline from another model of the same vocabulary. */
class EvalReferenceTest {
    @TempDir Path tmp;

    static final String GGUF_F32 = asset("models/stories260K/stories260K-f32.gguf").toString();

    private static JsonNode results(String... args) throws Exception {
        CliTest.Run r = run(args);
        assertEquals(0, r.code(), r.err());
        return JSON.readTree(r.out()).get("results");
    }

    @Test
    void theModelItselfAsReferenceChangesNothing() throws Exception {
        Path text = tmp.resolve("t.txt");
        Files.writeString(text, "Once upon a time, there was a little girl named Lily. She liked to play outside with her dog.");
        JsonNode plain = results("eval", "-m", GGUF_F32, "--text", text.toString(), "--compare", "dms:w=4", "--compare", "knorm:cr=2", "--json", "--no-progress");
        JsonNode self = results("eval", "-m", GGUF_F32, "--text", text.toString(), "--compare", "dms:w=4", "--compare", "knorm:cr=2", "--json", "--no-progress",
                "--reference-model", GGUF_F32);
        // the llama2.c original of the same weights: its tokenizer spells pieces differently but reads ids alike
        JsonNode bin = results("eval", "-m", GGUF_F32, "--text", text.toString(), "--compare", "dms:w=4", "--compare", "knorm:cr=2", "--json", "--no-progress",
                "--reference-model", asset("models/stories260K/stories260K.bin").toString());
        for (JsonNode other : new JsonNode[]{self, bin}) {
            assertEquals(plain.size(), other.size());
            for (int i = 0; i < plain.size(); i++) {
                for (String k : new String[]{"config", "ppl", "ppl_full", "kld", "token_match", "compression_ratio", "kv_bytes"}) {
                    assertEquals(plain.get(i).get(k), other.get(i).get(k), k);
                }
            }
        }
    }

    @Test
    void anotherModelGivesItsOwnFullCachePerplexity() throws Exception {
        Path ids = tmp.resolve("ids.json");
        Files.writeString(ids, JSON.writeValueAsString(IntStream.range(0, 48).map(i -> (i * 37 + 11) % 512).toArray()));
        String qwen = asset("models/tiny-qwen3-hf").toString(), llama = asset("models/tiny-llama-hf").toString();
        JsonNode own = results("eval", "-m", llama, "--token-ids", ids.toString(), "--kv-policy", "none", "--json", "--no-progress");
        JsonNode scored = results("eval", "-m", qwen, "--token-ids", ids.toString(), "--reference-model", llama, "--json", "--no-progress");
        JsonNode qwenAlone = results("eval", "-m", qwen, "--token-ids", ids.toString(), "--json", "--no-progress");
        assertEquals(own.get(0).get("ppl_full").asDouble(), scored.get(0).get("ppl_full").asDouble());
        assertEquals(own.get(0).get("ppl").asDouble(), scored.get(0).get("ppl_full").asDouble(), "the reference's full cache is its own ppl");
        assertEquals(qwenAlone.get(0).get("ppl").asDouble(), scored.get(0).get("ppl").asDouble(), "the model's side is unchanged");
        assertNotEquals(qwenAlone.get(0).get("ppl_full").asDouble(), scored.get(0).get("ppl_full").asDouble());
        assertTrue(scored.get(0).get("kld").asDouble() > 0.01, "two different models disagree");
        assertEquals(llama, scored.get(0).get("reference_model").asText());
    }

    @Test
    void anotherTokenizerIsRefused() throws Exception {
        Path other = tmp.resolve("other-tok.gguf");
        try (GGUF g = GGUF.open(Path.of(GGUF_F32))) {
            GGUFWriter w = new GGUFWriter().putAll(g);
            String[] tokens = ((String[]) g.metadata().get("tokenizer.ggml.tokens")).clone();
            tokens[300] = "\u2581zzz";
            w.put("tokenizer.ggml.tokens", tokens);
            g.tensors().values().forEach(w::tensor);
            w.write(other);
        }
        Path text = tmp.resolve("t.txt");
        Files.writeString(text, "Once upon a time");
        CliTest.Run r = run("eval", "-m", GGUF_F32, "--text", text.toString(), "--reference-model", other.toString(), "--no-progress");
        assertEquals(2, r.code(), r.err());
        assertTrue(r.err().contains("differs from the model's at token 300"), r.err());
        assertEquals(1, r.err().lines().count(), r.err());
        r = run("eval", "-m", GGUF_F32, "--text", text.toString(), "--reference-model", tmp.resolve("nope.gguf").toString());
        assertEquals(2, r.code(), r.err());
        assertTrue(r.err().contains("--reference-model"), r.err());
        Path bad = Files.writeString(tmp.resolve("bad.gguf"), "GGUF garbage");
        r = run("eval", "-m", GGUF_F32, "--text", text.toString(), "--reference-model", bad.toString());
        assertEquals(3, r.code(), r.err());
    }
}
