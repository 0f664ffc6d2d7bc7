package dev.fastdms.cli.serve;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.fastdms.cache.KvDtype;
import dev.fastdms.model.Engine;
import dev.fastdms.model.ProgressListener;
import dev.fastdms.model.serving.Scheduler;
import dev.fastdms.model.serving.SchedulerStats;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Benchmark (not a test): aggregate decode speed of the server at several numbers of concurrent streams. Starts the
 * server in this JVM on loopback, then for each c sends c streaming completions at once (each MAX_TOKENS tokens at
 * temperature 0) and reports wall-clock tokens/s (prefill included) and the scheduler's decode tokens/s (batched
 * decode steps only). Prints one JSON line per c.
 *
 * <pre>java ... dev.fastdms.cli.serve.ServeLoadBench MODEL MAX_TOKENS C1,C2,...</pre>
 */
public final class ServeLoadBench {
    public static void main(String[] a) throws Exception {
        Path model = Path.of(a[0]);
        int maxTokens = Integer.parseInt(a[1]);
        List<Integer> cs = new ArrayList<>();
        for (String c : a[2].split(",")) cs.add(Integer.parseInt(c));
        int maxSeqs = cs.stream().mapToInt(Integer::intValue).max().orElse(1);
        ObjectMapper om = new ObjectMapper();
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
        try (Engine e = Engine.open(new Engine.Options(model, null, 0, 0, "jvm", KvDtype.BF16, null, null, 0, 0, 4L << 30), ProgressListener.NONE)) {
            Scheduler s = new Scheduler(e, Scheduler.Options.of(maxSeqs, 256)).start();
            try (OpenAiServer server = new OpenAiServer(e, s, model.getFileName().toString(), "127.0.0.1", 0).start()) {
                String url = "http://127.0.0.1:" + server.port() + "/v1/completions";
                for (int c : cs) {
                    SchedulerStats before = s.stats();
                    long t0 = System.nanoTime();
                    List<Future<Integer>> got = new ArrayList<>();
                    try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
                        for (int i = 0; i < c; i++) {
                            String body = "{\"prompt\":\"Once upon a time, story " + i + ",\",\"max_tokens\":" + maxTokens
                                    + ",\"temperature\":0,\"stream\":true,\"stream_options\":{\"include_usage\":true}}";
                            got.add(pool.submit(() -> {
                                String sse = http.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofMinutes(10))
                                        .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString()).body();
                                String usage = null;
                                for (String line : sse.split("\n")) if (line.contains("\"usage\"")) usage = line.substring(6);
                                return om.readTree(usage).at("/usage/completion_tokens").asInt();
                            }));
                        }
                        long tokens = 0;
                        for (Future<Integer> f : got) tokens += f.get();
                        double wall = (System.nanoTime() - t0) / 1e9;
                        SchedulerStats after = s.stats();
                        double decodeTps = (after.decodeTokens() - before.decodeTokens()) / (after.decodeSeconds() - before.decodeSeconds());
                        System.out.printf("{\"model\":\"%s\",\"streams\":%d,\"completion_tokens\":%d,\"wall_s\":%.2f,\"wall_tokens_per_s\":%.2f,"
                                + "\"decode_tokens_per_s\":%.2f}%n", model.getFileName(), c, tokens, wall, tokens / wall, decodeTps);
                    }
                }
            }
        }
    }
}
