package dev.fastdms.cli;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static dev.fastdms.cli.CliTest.JSON;
import static dev.fastdms.cli.CliTest.asset;
import static dev.fastdms.cli.CliTest.run;
import static dev.fastdms.cli.HardeningCliTest.refused;
import static org.junit.jupiter.api.Assertions.*;

/** train-dms: every bad flag, path and data file is refused up front (one line, exit 2) before any training. */
class TrainDmsCommandTest {
    @TempDir Path tmp;

    static final String BIN = asset("models/stories260K/stories260K.bin").toString();

    /** Enough in-domain text for a few sequences: the model's own stories (the README's recipe, shortened). */
    private Path data() throws Exception {
        Path d = tmp.resolve("data.txt");
        if (Files.exists(d)) return d;
        StringBuilder sb = new StringBuilder();
        for (int seed = 1; seed <= 3; seed++) {
            CliTest.Run r = run("generate", "--temperature", "1", "--seed", String.valueOf(seed), "-n", "400", "--no-progress");
            assertEquals(0, r.code(), r.err());
            sb.append(r.out()).append('\n');
        }
        Files.writeString(d, sb);
        return d;
    }

    private String[] args(String... extra) throws Exception {
        List<String> a = new ArrayList<>(List.of("train-dms", "-m", BIN, "--data", data().toString(), "-o", tmp.resolve("out.gguf").toString(), "--no-progress"));
        a.addAll(List.of(extra));
        return a.toArray(String[]::new);
    }

    @Test
    void helpListsTheFlags() {
        CliTest.Run r = run("train-dms", "--help");
        assertEquals(0, r.code());
        for (String f : new String[]{"--data", "--target-cr", "--window", "--steps", "--seq-len", "--batch", "--lr", "--weight-decay",
                "--seed", "--threads", "--holdout", "--log", "--no-progress", "--json", "-o", "--decision", "adapter", "--budget", "per-head"}) {
            assertTrue(r.out().contains(f), f);
        }
        assertTrue(run("--help").out().contains("train-dms"));
    }

    @Test
    void numericFlagsAreRefused() throws Exception {
        Object[][] cases = {
                {"--target-cr", "NaN"}, {"--target-cr", "0.5"}, {"--target-cr", "Infinity"}, {"--target-cr", "1e9"},
                {"--window", "-1"}, {"--window", "99999999"},
                {"--steps", "0"}, {"--steps", "-5"}, {"--steps", "20000000"}, {"--steps", "99999999999"},
                {"--seq-len", "1"}, {"--seq-len", "2000000"},
                {"--batch", "0"}, {"--batch", "5000"},
                {"--lr", "NaN"}, {"--lr", "0"}, {"--lr", "-1e-3"}, {"--lr", "2"},
                {"--weight-decay", "-0.1"}, {"--weight-decay", "NaN"}, {"--weight-decay", "Infinity"},
                {"--holdout", "1"}, {"--holdout", "-0.1"}, {"--holdout", "NaN"},
                {"--threads", "0"}, {"--threads", "100000"},
                {"--seed", "abc"}, {"--steps", "1.5"},
        };
        for (Object[] c : cases) refused(2, "", args((String) c[0], (String) c[1]));
        refused(2, "--target-cr must be", args("--target-cr", "NaN"));
        refused(2, "--lr must be", args("--lr", "NaN"));
        refused(2, "Invalid value", args("--steps", "99999999999"));
        refused(2, "shorter than --seq-len", args("--window", "600"));
        refused(2, "cannot be reached", args("--target-cr", "40")); // at the default seq-len 512 and window 16 CR <= 30.1
        refused(2, "--decision must be channel or adapter, got bogus", args("--decision", "bogus"));
        refused(2, "--decision must be", args("--decision", "ADAPTER"));
        refused(2, "--budget must be global or per-head, got head", args("--budget", "head"));
    }

    @Test
    void requiredFlagsAndBadPathsAreRefused() throws Exception {
        String d = data().toString(), out = tmp.resolve("o.gguf").toString();
        refused(2, "Missing required", "train-dms", "--data", d, "-o", out);
        refused(2, "Missing required", "train-dms", "-m", BIN, "-o", out);
        refused(2, "Missing required", "train-dms", "-m", BIN, "--data", d);
        refused(2, "no such model", "train-dms", "-m", tmp.resolve("none.bin").toString(), "--data", d, "-o", out);
        refused(2, "no such file", "train-dms", "-m", BIN, "--data", tmp.resolve("none.txt").toString(), "-o", out);
        refused(2, "is a directory", "train-dms", "-m", BIN, "--data", d, "-o", tmp.toString());
        refused(2, "no such directory", "train-dms", "-m", BIN, "--data", d, "-o", tmp.resolve("nodir/o.gguf").toString());
        Path copy = Files.copy(Path.of(BIN), tmp.resolve("m.bin"));
        refused(2, "is the model being retrofitted", "train-dms", "-m", copy.toString(), "--data", d, "-o", copy.toString());
        Path file = Files.writeString(tmp.resolve("a-file"), "x");
        refused(2, "written as a directory", "train-dms", "-m", asset("models/tiny-llama-hf").toString(), "--data", d, "-o", file.toString());
        refused(2, "--log", args("--log", tmp.toString()));
        refused(2, "--log", args("--log", tmp.resolve("nodir/l.jsonl").toString()));
        Files.createDirectory(tmp.resolve("out.gguf.heldout.json"));
        refused(2, "held-out split", args());
    }

    @Test
    void dataAndModelProblemsAreRefused() throws Exception {
        String out = tmp.resolve("o.gguf").toString();
        Path binary = Files.write(tmp.resolve("bin.txt"), new byte[]{(byte) 0xC3, 0x28, 0, 1});
        refused(2, "not valid UTF-8", "train-dms", "-m", BIN, "--data", binary.toString(), "-o", out);
        Path tiny = Files.writeString(tmp.resolve("short.txt"), "Once upon a time there was a cat.");
        refused(2, "fewer than one sequence", "train-dms", "-m", BIN, "--data", tiny.toString(), "-o", out);
        refused(2, "exceeds the model's context", args("--seq-len", "1000"));
        refused(2, "too few to score", "train-dms", "-m", BIN, "--data", tiny.toString(), "-o", out, "--seq-len", "8", "--window", "2", "--target-cr", "2", "--holdout", "0.01");
        refused(2, "carries no tokenizer", "train-dms", "-m", asset("models/tiny-llama-hf").toString(), "--data", data().toString(), "-o", tmp.resolve("hf").toString());
        Path corrupt = Files.writeString(tmp.resolve("bad.gguf"), "GGUF and then nothing useful");
        refused(3, "", "train-dms", "-m", corrupt.toString(), "--data", data().toString(), "-o", out);
        assertFalse(Files.exists(Path.of(out)), "nothing written");
    }

    /**
     * A short real retrofit of stories260K: the checkpoint loads, generates, carries the DMS window, and its hard
     * decisions, run by the engine on the held-out split, give the CR it was trained for (as eval prints it).
     */
    @Test
    void shortRetrofitOfStories260KReachesItsTargetCrOnHeldOutText() throws Exception {
        int steps = 200;
        double targetCr = 2.5;
        Path out = tmp.resolve("out.gguf"), log = tmp.resolve("train.jsonl"); // args() names this output
        CliTest.Run r = run(args("--steps", String.valueOf(steps), "--seq-len", "64", "--batch", "4", "--window", "8", "--lr", "3e-3",
                "--target-cr", String.valueOf(targetCr), "--log", log.toString(), "--json"));
        assertEquals(0, r.code(), r.err());
        JsonNode s = JSON.readTree(r.out());
        assertEquals(steps, s.get("steps").asInt());
        assertEquals("channel", s.get("decision").asText(), "the default");
        assertEquals("gguf", s.get("format").asText());
        assertEquals(8, s.get("dms").get("window").asInt());

        List<String> lines = Files.readAllLines(log);
        assertEquals(steps, lines.size());
        for (String line : lines) {
            JsonNode l = JSON.readTree(line);
            for (String k : new String[]{"step", "loss", "kl", "compression_loss", "eviction_rate", "target_eviction_rate", "compression_ratio", "seconds"}) {
                assertTrue(l.has(k) && Double.isFinite(l.get(k).asDouble()), k + " in " + l);
            }
        }

        Path heldIds = TrainDmsCommand.sibling(out, ".heldout.json"), heldText = TrainDmsCommand.sibling(out, ".heldout.txt");
        int[] held = JSON.readValue(heldIds.toFile(), int[].class);
        assertEquals(s.get("heldout_tokens").asInt(), held.length);
        assertTrue(held.length > 100);
        assertFalse(Files.readString(heldText).isBlank());

        JsonNode inspect = JSON.readTree(run("inspect", "-m", out.toString(), "--json").out());
        assertEquals(8, inspect.get("config").get("dms").get("window").asInt());
        assertEquals("channel", inspect.get("dms_decision").asText());
        CliTest.Run g = run("generate", "-m", out.toString(), "-p", "Once upon a time", "-n", "20", "--json", "--no-progress");
        assertEquals(0, g.code(), g.err());
        assertFalse(JSON.readTree(g.out()).get("text").asText().isBlank());
        // held-out windows of the training length: the engine's CR at their last query, from the hard rule
        CliTest.Run e = run("eval", "-m", out.toString(), "--reference-model", BIN, "--token-ids", heldIds.toString(), "--ctx", "64", "--json", "--no-progress");
        assertEquals(0, e.code(), e.err());
        JsonNode res = JSON.readTree(e.out()).get("results").get(0);
        assertTrue(Double.isFinite(res.get("ppl").asDouble()) && Double.isFinite(res.get("kld").asDouble()), res.toString());
        double cr = res.get("compression_ratio").asDouble();
        assertEquals(targetCr, cr, 0.15 * targetCr, "held-out CR " + cr + " against the target " + targetCr);
        CliTest.Run untrained = run("eval", "-m", BIN, "--token-ids", heldIds.toString(), "--ctx", "64", "--json", "--no-progress", "--dms-window", "8");
        double before = JSON.readTree(untrained.out()).get("results").get(0).get("compression_ratio").asDouble();
        assertTrue(before < 0.85 * targetCr, "the original's own decisions were not already there: CR " + before);
    }

    /**
     * The decision adapter: the checkpoint carries a dms_alpha projection per layer, loads and runs with DMS, and its
     * evaluated CR on a held-out stretch is the trainer's hard-decision CR on the same tokens.
     */
    @Test
    void adapterRetrofitWritesTheAdapter() throws Exception {
        Path out = tmp.resolve("out.gguf");
        CliTest.Run r = run(args("--decision", "adapter", "--steps", "8", "--seq-len", "64", "--batch", "2", "--window", "8",
                "--target-cr", "2", "--lr", "3e-3", "--json"));
        assertEquals(0, r.code(), r.err());
        JsonNode s = JSON.readTree(r.out());
        assertEquals("adapter", s.get("decision").asText());

        JsonNode inspect = JSON.readTree(run("inspect", "-m", out.toString(), "--json", "--tensors").out());
        assertEquals("adapter", inspect.get("dms_decision").asText());
        assertEquals(8, inspect.get("config").get("dms").get("window").asInt());
        JsonNode tensors = inspect.get("tensors");
        int layers = inspect.get("config").get("layers").asInt();
        for (int l = 0; l < layers; l++) {
            for (String n : new String[]{"dms_alpha.weight", "dms_alpha.bias", "dms_alpha_norm.weight"}) {
                assertTrue(tensors.get("blk." + l + "." + n).asText().startsWith("F32"), n + " in layer " + l + ": " + tensors);
            }
        }
        assertTrue(run("inspect", "-m", out.toString()).out().contains("adapter projection"));
        try (var ck = dev.fastdms.model.format.ModelLoader.open(out)) {
            float[] a = ck.tensor("blk.0.dms_alpha.weight").floats();
            assertTrue(java.util.stream.IntStream.range(0, a.length).anyMatch(i -> a[i] != 0), "the adapter trained away from its zero start");
        }
        CliTest.Run e = run("eval", "-m", out.toString(), "--reference-model", BIN, "--token-ids",
                TrainDmsCommand.sibling(out, ".heldout.json").toString(), "--json", "--no-progress");
        assertEquals(0, e.code(), e.err());
        JsonNode res = JSON.readTree(e.out()).get("results").get(0);
        assertTrue(Double.isFinite(res.get("ppl").asDouble()) && Double.isFinite(res.get("kld").asDouble()), res.toString());
    }
}
