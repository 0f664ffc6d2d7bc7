package dev.fastdms.cli;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

import static dev.fastdms.cli.CliTest.JSON;
import static dev.fastdms.cli.CliTest.asset;
import static dev.fastdms.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.*;

/** Input the CLI must refuse up front (one line, exit 2) and failures that must not escape as stack traces. */
class HardeningCliTest {
    static void refused(int code, String message, String... args) {
        CliTest.Run r = run(args);
        String what = String.join(" ", args);
        assertEquals(code, r.code(), what + " -> " + r.err());
        assertTrue(r.err().contains(message), what + " -> " + r.err());
        assertEquals(1, r.err().strip().lines().count(), what + " printed more than one line: " + r.err());
        assertFalse(r.err().contains("Exception") || r.err().contains("\tat "), what + " printed a stack trace: " + r.err());
    }

    @Test
    void threadsAboveTheProcessorsAreRefused() {
        int cores = Runtime.getRuntime().availableProcessors();
        refused(2, "--threads", "generate", "--threads", String.valueOf(cores + 1), "-n", "4");
        refused(2, "--threads", "generate", "--threads", "5000", "-n", "4");
        assertEquals(0, run("generate", "--threads", String.valueOf(cores), "-n", "4").code());
    }

    @Test
    void badInputFilesAndValuesAreRefusedUpFront(@TempDir Path tmp) throws Exception {
        Path badUtf8 = tmp.resolve("bad.txt");
        Files.write(badUtf8, new byte[]{'O', 'n', 'c', 'e', (byte) 0xC3, ' ', (byte) 0xFF, '\n'});
        Path good = tmp.resolve("good.txt");
        Files.writeString(good, "Once upon a time there was a little girl named Lily. She liked to play outside.");
        refused(2, "UTF-8", "generate", "--prompt-file", badUtf8.toString(), "-n", "4");
        refused(2, "UTF-8", "eval", "--text", badUtf8.toString());
        refused(2, "--stride", "eval", "--text", good.toString(), "--stride", "0");
        refused(2, "--stride", "eval", "--text", good.toString(), "--stride", "-3");
        refused(2, "--max-tokens", "eval", "--text", good.toString(), "--max-tokens", "-1");
        refused(2, "directory", "synth", "--shape", "llama-3.2-1b", "-o", tmp.toString());
        Path ids = tmp.resolve("ids.json");
        Files.writeString(ids, "[1, 403, 1.5, 407]");
        refused(2, "token ids", "eval", "--token-ids", ids.toString());
    }

    @Test
    void valuesThatUsedToRunAreRefused() {
        refused(2, "temperature", "generate", "--temperature", "NaN", "-n", "4");
        refused(2, "temperature", "generate", "--temperature", "Infinity", "-n", "4");
        refused(2, "top-p", "generate", "--top-p", "NaN", "-n", "4");
        refused(2, "alpha", "generate", "--dms-alpha-scale", "NaN", "-n", "4");
        refused(2, "alpha", "generate", "--dms-alpha-offset", "-Infinity", "-n", "4");
        refused(2, "--kv-budget", "generate", "--kv-budget", "0.5", "-n", "4");
        refused(2, "not both", "generate", "--kv-policy", "knorm", "--kv-target-cr", "2", "--kv-tokens", "8", "-n", "4");
        refused(2, "--at", "inspect", "--at", "-1");
    }

    @Test
    void benchChecksItsFlagsBeforeItRuns(@TempDir Path tmp) {
        long t0 = System.nanoTime();
        refused(2, "--plot", "bench", "--ctx", "128", "--gen", "3", "--fill", "random", "--plot", tmp.resolve("no/such/dir/b.png").toString());
        refused(2, "--synthetic", "bench", "--synthetic", "llama-3.2-1b", "-m", asset("models/stories260K/stories260K-f32.gguf").toString());
        assertTrue(System.nanoTime() - t0 < 20_000_000_000L, "refused without running the benchmark or writing a model");
    }

    @Test
    void benchWithoutBaselineWritesNullRatios() throws Exception {
        CliTest.Run r = run("bench", "--ctx", "64", "--gen", "2", "--fill", "random", "--no-baseline", "--json");
        assertEquals(0, r.code(), r.err());
        JsonNode row = JSON.readTree(r.out().strip().lines().findFirst().orElseThrow());
        assertTrue(row.get("kv_smaller_x").isNull(), row.toString());
        assertTrue(row.get("decode_faster_x").isNull(), row.toString());
        assertTrue(row.get("decode_tokens_per_s").isNumber(), row.toString());
    }

    @Test
    void maxTokensIsBoundedByTheContextNotAllocated() throws Exception {
        CliTest.Run r = run("generate", "-n", "2147483647", "--json", "--no-progress");
        assertEquals(0, r.code(), r.err());
        JsonNode o = JSON.readTree(r.out());
        assertEquals("context_full", o.get("stop_reason").asText());
        assertEquals(512, o.get("prompt_ids").size() + o.get("ids").size() - 1);
        // -n 100000000 allocated two int[n] (800 MB) up front; the buffers are sized by the context now
        var mx = (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        long before = mx.getCurrentThreadAllocatedBytes();
        CliTest.Run big = run("generate", "-n", "100000000", "--json", "--no-progress");
        long allocated = mx.getCurrentThreadAllocatedBytes() - before;
        assertEquals(0, big.code(), big.err());
        assertTrue(allocated < 200_000_000L, "allocated " + allocated / 1_000_000 + " MB");
    }

    @Test
    void anErrorIsOneLineWithItsOwnExitCode() {
        @CommandLine.Command(name = "boom")
        class Boom implements Callable<Integer> {
            final Error error;
            Boom(Error error) { this.error = error; }
            @Override public Integer call() { throw error; }
        }
        for (Error e : new Error[]{new OutOfMemoryError("Java heap space"), new StackOverflowError()}) {
            StringWriter out = new StringWriter(), err = new StringWriter();
            int code = Main.execute(new CommandLine(new Boom(e)), new String[0], new PrintWriter(out, true), new PrintWriter(err, true));
            assertEquals(e instanceof OutOfMemoryError ? 6 : 1, code, err.toString());
            assertEquals(1, err.toString().strip().lines().count(), err.toString());
            assertTrue(err.toString().startsWith("fastdms: "), err.toString());
            assertFalse(err.toString().contains("\tat "), err.toString());
        }
        StringWriter err = new StringWriter();
        Main.execute(new CommandLine(new Boom(new OutOfMemoryError("Java heap space"))), new String[0], new PrintWriter(new StringWriter()), new PrintWriter(err, true));
        assertTrue(err.toString().contains("out of memory"), err.toString());
    }

    @Test
    void generationStopsWhenStdoutCloses() {
        int[] writes = {0};
        OutputStream closed = new OutputStream() {
            @Override public void write(int b) throws IOException { writes[0]++; throw new IOException("Broken pipe"); }
            @Override public void write(byte[] b, int off, int len) throws IOException { writes[0]++; throw new IOException("Broken pipe"); }
        };
        StringWriter err = new StringWriter();
        int code = Main.run(new String[]{"generate", "-n", "400", "--no-progress"}, new PrintWriter(closed, true), new PrintWriter(err, true));
        assertEquals(1, code, err.toString());
        assertTrue(err.toString().contains("stdout"), err.toString());
        assertTrue(writes[0] <= 3, "kept writing after the pipe closed: " + writes[0] + " writes");
    }

    @Test
    void devicesTakesHelp() {
        CliTest.Run r = run("devices", "--help");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("Usage: fastdms devices"), r.out());
    }

    @Test
    void theBundledLlama2cCheckpointFindsItsTokenizer() throws Exception {
        Path bin = Path.of(System.getProperty("fastdms.root", ".")).resolve("models/stories260K.bin");
        CliTest.Run r = run("generate", "-m", bin.toString(), "-n", "8", "--json");
        assertEquals(0, r.code(), r.err());
        assertTrue(JSON.readTree(r.out()).get("text").asText().startsWith("Once upon a time"), r.out());
    }
}
