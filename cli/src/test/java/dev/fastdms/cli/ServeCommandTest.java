package dev.fastdms.cli;

import org.junit.jupiter.api.Test;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/** `fastdms serve` as a user runs it: bad flags, and a real process that answers, then stops on SIGTERM. */
class ServeCommandTest {
    @Test
    void badFlagsEndWithOneLineAndExit2() {
        String[][] cases = {{"--max-seqs", "0"}, {"--max-seqs", "65"}, {"--max-queue", "0"}, {"--port", "70000"}, {"--port", "-1"},
                {"--max-seqs", "abc"}, {"--kv-budget", "NaN"}, {"--kv-budget", "-5G"}, {"--port", "99999999999"}};
        for (String[] c : cases) {
            String[] args = new String[c.length + 1];
            args[0] = "serve";
            System.arraycopy(c, 0, args, 1, c.length);
            CliTest.Run r = CliTest.run(args);
            assertEquals(2, r.code(), String.join(" ", c) + ": " + r.err());
            assertEquals(1, r.err().strip().lines().count(), r.err());
            assertTrue(r.err().startsWith("fastdms: "), r.err());
        }
    }

    @Test
    void readyLineThenServesThenStopsCleanlyOnSigterm() throws Exception {
        String model = CliTest.asset("models/stories260K/stories260K.bin").toString();
        List<String> cmd = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"), "dev.fastdms.cli.Main",
                "serve", "-m", model, "--port", "0", "--max-seqs", "4", "--kv-budget", "64M", "--no-progress");
        Process p = new ProcessBuilder(cmd).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        try {
            BufferedReader err = new BufferedReader(new InputStreamReader(p.getErrorStream(), StandardCharsets.UTF_8));
            Pattern ready = Pattern.compile("^fastdms serve: listening on (http://127\\.0\\.0\\.1:\\d+), model stories260K\\.bin, backend jvm, kv none:dtype=f32, kv budget 67108864 bytes.*");
            String base = null;
            StringBuilder seen = new StringBuilder();
            for (String line; base == null && (line = err.readLine()) != null; ) {
                seen.append(line).append('\n');
                Matcher m = ready.matcher(line);
                if (m.matches()) base = m.group(1);
            }
            assertNotNull(base, "no ready line in: " + seen);
            assertEquals(1, seen.toString().lines().filter(l -> !l.startsWith("WARNING: Using incubator")).count(), "one line when ready: " + seen);
            HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/completions")).timeout(Duration.ofSeconds(60))
                    .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\":\"Once upon a time\",\"max_tokens\":5,\"temperature\":0}")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, r.statusCode(), r.body());
            assertTrue(p.toHandle().destroy()); // SIGTERM (Process.destroy would also close our end of its stderr)
            String rest = err.lines().collect(java.util.stream.Collectors.joining("\n")); // until the process ends
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the server should stop on SIGTERM");
            assertTrue(rest.contains("fastdms serve: shutting down"), rest);
            assertFalse(rest.contains("Exception"), rest);
        } finally {
            p.destroyForcibly();
        }
    }
}
