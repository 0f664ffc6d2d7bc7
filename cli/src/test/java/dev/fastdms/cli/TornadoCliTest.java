package dev.fastdms.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.fastdms.model.BackendProvider;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * --backend opencl from the command line. This JVM runs without TornadoVM's options, so in-process the flag must fail
 * with one clear line. Where the build carries the TornadoVM backend (an SDK was found), the CLI also runs in a child
 * JVM started with the SDK's options and must produce the JVM backend's greedy tokens.
 */
class TornadoCliTest {
    @Test
    void withoutTornadoVmTheFlagFailsWithOneClearLine() {
        CliTest.Run r = CliTest.run("generate", "--backend", "opencl", "-n", "4");
        assertEquals(2, r.code(), r.err());
        assertTrue(r.err().contains("TornadoVM"), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertFalse(r.err().contains("\tat "), r.err());
        CliTest.Run dev = CliTest.run("generate", "--device", "1");
        assertEquals(2, dev.code());
        assertTrue(dev.err().contains("--device and --kv-slots go with a TornadoVM --backend"), dev.err());
    }

    @Test
    void underTornadoVmOpenClReproducesTheGreedyGolden() throws Exception {
        boolean built = !BackendProvider.all().isEmpty();
        Path root = Path.of(System.getProperty("fastdms.root", "..")).toAbsolutePath().normalize();
        Path argfile = root.resolve("tornado/target/tornado-argfile");
        if (!built) {
            // this build has no TornadoVM backend: the devices command says so, in one line about TornadoVM
            CliTest.Run r = CliTest.run("devices");
            assertEquals(0, r.code(), r.err());
            assertTrue(r.out().contains("not in this build"), r.out());
            return;
        }
        assertTrue(Files.exists(argfile), "the tornado module wrote " + argfile);
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "@" + argfile,
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Dfastdms.root=" + root,
                "-cp", System.getProperty("java.class.path"), "dev.fastdms.cli.Main",
                "generate", "--backend", "opencl", "-n", "40", "--json", "--no-progress"));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(false).start();
        byte[] out = p.getInputStream().readAllBytes();
        String err = new String(p.getErrorStream().readAllBytes());
        assertTrue(p.waitFor(5, TimeUnit.MINUTES));
        assertEquals(0, p.exitValue(), err);
        JsonNode o = new ObjectMapper().readTree(out);
        JsonNode golden = new ObjectMapper().readTree(CliTest.asset("reference/stories260K_greedy_reference.json").toFile()).get("greedy_token_ids");
        for (int i = 0; i < 40; i++) assertEquals(golden.get(i).asInt(), o.get("ids").get(i).asInt(), "token " + i);
        assertTrue(o.get("kv_live").isArray(), "per-head live counts read back from the device: " + o);
    }

    /** The CLI in a child JVM under TornadoVM: exit code, stdout, stderr. */
    static String[] underTornado(Path argfile, Path root, String stdin, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "@" + argfile,
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Dfastdms.root=" + root,
                "-Duser.home=" + Files.createTempDirectory("fastdms-home"),
                "-cp", System.getProperty("java.class.path"), "dev.fastdms.cli.Main"));
        cmd.addAll(List.of(args));
        Path errFile = Files.createTempFile("fastdms-err", ".txt");
        Process p = new ProcessBuilder(cmd).redirectError(errFile.toFile()).start();
        p.getOutputStream().write(stdin.getBytes());
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(5, TimeUnit.MINUTES));
        return new String[]{String.valueOf(p.exitValue()), out, Files.readString(errFile)};
    }

    @Test
    void underTornadoVmChatResetInspectAndEvalBehaveAsOnTheJvm(@org.junit.jupiter.api.io.TempDir Path tmp) throws Exception {
        if (BackendProvider.all().isEmpty()) return; // no TornadoVM backend in this build: covered by the test above
        Path root = Path.of(System.getProperty("fastdms.root", "..")).toAbsolutePath().normalize();
        Path argfile = root.resolve("tornado/target/tornado-argfile");
        // /reset gives the device sequence slot back: the next conversation gets one
        String[] chat = underTornado(argfile, root, "Once upon a time\n/reset\nOnce upon a time\n/exit\n", "chat", "--backend", "opencl", "-n", "20", "--no-progress");
        assertEquals("0", chat[0], chat[1] + chat[2]);
        assertEquals(2, java.util.regex.Pattern.compile("\\[20 tokens, ").matcher(chat[1]).results().count(), chat[1] + chat[2]);
        assertFalse(chat[1].contains("slots are in use"), chat[1]);
        String[] inspect = underTornado(argfile, root, "", "inspect", "--backend", "opencl");
        assertEquals("0", inspect[0], inspect[2]);
        assertTrue(inspect[1].contains("architecture llama"), inspect[1]);
        // eval's CR on the device is the golden's, as the user reads it
        JsonNode ref = new ObjectMapper().readTree(CliTest.asset("reference/stories260K_dms_reference.json").toFile());
        Path ids = tmp.resolve("ids.json");
        Files.writeString(ids, ref.get("input_ids").toString());
        String[] eval = underTornado(argfile, root, "", "eval", "--backend", "opencl", "--token-ids", ids.toString(), "--kv-policy", "dms",
                "--dms-window", "16", "--json", "--no-progress");
        assertEquals("0", eval[0], eval[2]);
        assertEquals(ref.get("cases").get(0).get("compression_ratio").asDouble(),
                new ObjectMapper().readTree(eval[1]).get("results").get(0).get("compression_ratio").asDouble(), 1e-12);
    }

    /**
     * serve on the device: more requests than device sequence slots wait for a slot and get it back when one ends;
     * every request's greedy text equals the JVM backend's; afterwards nothing runs and no KV is held.
     */
    @Test
    void serveOnOpenClQueuesForDeviceSlotsAndGivesThemBack() throws Exception {
        if (BackendProvider.all().isEmpty()) return; // no TornadoVM backend in this build: the test above covers it
        Path root = Path.of(System.getProperty("fastdms.root", "..")).toAbsolutePath().normalize();
        Path argfile = root.resolve("tornado/target/tornado-argfile");
        int port = 20000 + (int) (ProcessHandle.current().pid() % 20000);
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "@" + argfile,
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Dfastdms.root=" + root,
                "-cp", System.getProperty("java.class.path"), "dev.fastdms.cli.Main",
                "serve", "--backend", "opencl", "--max-seqs", "2", "--port", String.valueOf(port), "--no-progress"));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.PIPE).start();
        try {
            var lines = new java.io.BufferedReader(new java.io.InputStreamReader(p.getInputStream()));
            String line;
            long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(3);
            while ((line = lines.readLine()) != null && !line.contains("listening on")) {
                assertTrue(System.nanoTime() < deadline, "no ready line");
            }
            assertNotNull(line, "serve exited before it was ready");
            Thread.ofVirtual().start(() -> { try { lines.transferTo(java.io.Writer.nullWriter()); } catch (java.io.IOException ignored) { } });
            var http = java.net.http.HttpClient.newHttpClient();
            String body = "{\"prompt\":\"Once upon a time\",\"max_tokens\":24,\"temperature\":0}";
            List<java.util.concurrent.CompletableFuture<java.net.http.HttpResponse<String>>> calls = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                calls.add(http.sendAsync(java.net.http.HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:" + port + "/v1/completions"))
                        .header("Content-Type", "application/json").POST(java.net.http.HttpRequest.BodyPublishers.ofString(body)).build(),
                        java.net.http.HttpResponse.BodyHandlers.ofString()));
            }
            CliTest.Run jvm = CliTest.run("generate", "-p", "Once upon a time", "-n", "24", "--json", "--no-progress");
            String want = new ObjectMapper().readTree(jvm.out()).get("text").asText();
            for (var call : calls) {
                var r = call.get(3, TimeUnit.MINUTES);
                assertEquals(200, r.statusCode(), r.body());
                assertEquals(want, new ObjectMapper().readTree(r.body()).get("choices").get(0).get("text").asText());
            }
            String metrics = http.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:" + port + "/metrics")).build(),
                    java.net.http.HttpResponse.BodyHandlers.ofString()).body();
            assertTrue(metrics.contains("fastdms_requests_running 0"), metrics);
            assertTrue(metrics.contains("fastdms_requests_finished_total 3"), metrics);
            assertTrue(metrics.contains("fastdms_kv_bytes_in_use 0"), metrics);
        } finally {
            p.destroy();
            assertTrue(p.waitFor(1, TimeUnit.MINUTES), "serve stops on SIGTERM");
        }
    }

    /**
     * bench on the opencl backend (PoCL here): a dense and a DMS row per batch size, with the JVM bench's fields plus
     * the device's launches per step (1 + 7 per layer + 2: 38 for stories260K's 5 layers) and the
     * profiled pass's kernel and other milliseconds per step.
     */
    @Test
    void benchOnOpenClReportsTheDeviceStep() throws Exception {
        if (BackendProvider.all().isEmpty()) return; // no TornadoVM backend in this build
        Path root = Path.of(System.getProperty("fastdms.root", "..")).toAbsolutePath().normalize();
        Path argfile = root.resolve("tornado/target/tornado-argfile");
        String[] r = underTornado(argfile, root, "", "bench", "--backend", "opencl", "--ctx", "48", "--gen", "8", "--batch", "1,2",
                "--dms-evict-fraction", "0.5", "--dms-window", "4", "--json", "--no-progress");
        assertEquals("0", r[0], r[2]);
        List<JsonNode> rows = new ArrayList<>();
        for (String line : r[1].strip().split("\n")) rows.add(new ObjectMapper().readTree(line));
        assertEquals(4, rows.size(), r[1]);
        for (JsonNode o : rows) {
            assertEquals("opencl", o.get("backend").asText(), o.toString());
            for (String f : List.of("config", "ctx", "batch", "prefill_tokens_per_s", "decode_tokens_per_s", "kv_bytes", "kv_bytes_dense_bf16",
                    "compression_ratio", "heap_bytes", "offheap_bytes", "kv_smaller_x", "decode_faster_x")) assertTrue(o.has(f), f + " in " + o);
            // stories260K: 5 layers; one step kernel, 7 per layer, the logits and the pick
            assertEquals(1 + 7 * 5 + 2, o.get("launches_per_step").asInt(), o.toString());
            assertTrue(o.get("kernel_ms_per_step").asDouble() > 0, o.toString());
            assertTrue(o.get("host_ms_per_step").asDouble() >= 0, o.toString());
            assertTrue(o.get("decode_tokens_per_s").asDouble() > 0, o.toString());
            assertTrue(o.get("prefill_tokens_per_s").asDouble() > 0, o.toString());
        }
        assertEquals("dense-f32", rows.get(0).get("config").asText());
        assertEquals(1.0, rows.get(0).get("compression_ratio").asDouble(), 1e-9);
        assertTrue(rows.get(1).get("compression_ratio").asDouble() > 1.2, "DMS evicts on the device: " + rows.get(1));
        assertEquals(2, rows.get(3).get("batch").asInt());
    }

    /** --backend ptx where the SDK has no PTX backend (or the machine no CUDA driver): one clear line, exit 2. */
    @Test
    void ptxWithoutItsBackendFailsWithOneClearLine() throws Exception {
        if (BackendProvider.all().isEmpty()) return; // no TornadoVM backend in this build
        Path root = Path.of(System.getProperty("fastdms.root", "..")).toAbsolutePath().normalize();
        Path argfile = root.resolve("tornado/target/tornado-argfile");
        String[] r = underTornado(argfile, root, "", "generate", "--backend", "ptx", "-n", "4", "--no-progress");
        assertEquals("2", r[0], r[2]);
        String err = r[2].lines().filter(l -> !l.startsWith("WARNING")).reduce("", (a, b) -> a + b + "\n").strip();
        assertTrue(err.contains("no ptx backend"), err);
        assertEquals(1, err.lines().count(), err);
        assertFalse(err.contains("\tat "), err);
    }

    /**
     * An SDK built with OpenCL and PTX (TORNADOVM_PTX_SDK, default /opt/tornadovm-sdks/tornadovm-5.2.1-jdk25-dev-opencl-ptx)
     * on a machine without NVIDIA's driver: its runtime cannot start (libcuda.so.1 is loaded for every backend), so
     * --backend ptx fails with one line naming the missing driver, exit 2, and devices still lists the JVM. Runs only
     * where such an SDK is installed and no libcuda.so.1 is.
     */
    @Test
    void ptxSdkWithoutCudaDriverFailsWithOneClearLine(@org.junit.jupiter.api.io.TempDir Path tmp) throws Exception {
        if (BackendProvider.all().isEmpty()) return;
        Path sdk = Path.of(System.getenv().getOrDefault("TORNADOVM_PTX_SDK", "/opt/tornadovm-sdks/tornadovm-5.2.1-jdk25-dev-opencl-ptx"));
        Path template = sdk.resolve("tornado-argfile.template");
        if (!Files.exists(template) || !Files.exists(sdk.resolve("lib/libtornado-ptx.so"))) return;
        for (String lib : List.of("/usr/lib/x86_64-linux-gnu/libcuda.so.1", "/usr/lib64/libcuda.so.1", "/usr/local/nvidia/lib64/libcuda.so.1")) {
            if (Files.exists(Path.of(lib))) return; // a CUDA driver is here: this is not the machine this test is about
        }
        Path argfile = tmp.resolve("ptx-argfile");
        Files.writeString(argfile, Files.readString(template).replace("${TORNADOVM_HOME}", sdk.toString()));
        Path root = Path.of(System.getProperty("fastdms.root", "..")).toAbsolutePath().normalize();
        String[] r = underTornado(argfile, root, "", "generate", "--backend", "ptx", "-n", "4", "--no-progress");
        assertEquals("2", r[0], r[2]);
        String err = r[2].lines().filter(l -> !l.startsWith("WARNING")).reduce("", (a, b) -> a + b + "\n").strip();
        assertEquals(1, err.lines().count(), err);
        assertTrue(err.contains("CUDA driver (libcuda.so.1)"), err);
        String[] d = underTornado(argfile, root, "", "devices");
        assertEquals("0", d[0], d[2]);
        assertTrue(d[1].contains("--backend jvm") && d[1].contains("CUDA driver"), d[1]);
    }
}
