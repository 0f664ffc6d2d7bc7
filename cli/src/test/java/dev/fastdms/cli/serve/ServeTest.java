package dev.fastdms.cli.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.fastdms.cache.KvDtype;
import dev.fastdms.model.Engine;
import dev.fastdms.model.ProgressListener;
import dev.fastdms.model.Sampler;
import dev.fastdms.model.serving.ChatPrompt;
import dev.fastdms.model.serving.Scheduler;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.openai.OpenAiChatModel;
import dev.langchain4j.model.openai.OpenAiStreamingChatModel;
import dev.langchain4j.model.output.FinishReason;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/** The server over loopback (127.0.0.1, an ephemeral port) with a real OpenAI client (langchain4j) and plain HTTP. */
class ServeTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final Path MODEL = Path.of(System.getProperty("fastdms.root", ".")).resolve("../shared/assets/models/stories260K/stories260K.bin").normalize();
    static final String ID = "stories260K.bin";
    static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(10)).build();

    Engine engine;
    OpenAiServer server;
    String base;

    void start(int maxSeqs, int maxQueue) {
        engine = Engine.open(new Engine.Options(MODEL, null, 0, 0, "jvm", KvDtype.F32, null, null, 0, 0, 256L << 20), ProgressListener.NONE);
        Scheduler s = new Scheduler(engine, Scheduler.Options.of(maxSeqs, maxQueue)).start();
        server = new OpenAiServer(engine, s, ID, "127.0.0.1", 0).start();
        base = "http://127.0.0.1:" + server.port();
    }

    @AfterEach
    void stop() {
        if (server != null) server.close();
        if (engine != null) engine.close();
    }

    /** Greedy text of a prompt run alone through generate's code path (its text stream too), on an engine of its own. */
    static String alone(Engine e, int[] prompt, int max) {
        var seq = e.newSequence();
        var text = e.textStream(prompt);
        StringBuilder sb = new StringBuilder();
        var r = e.generate(seq, prompt, max, Sampler.Settings.greedy(), id -> { if (!e.isStop(id)) sb.append(text.next(id)); }, ProgressListener.NONE);
        seq.kv().release();
        assertTrue(r.ids().length > 0);
        return sb.append(text.flush()).toString();
    }

    static HttpResponse<String> post(String url, String body) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(60))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    }

    static HttpResponse<String> get(String url) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(30)).GET().build(), HttpResponse.BodyHandlers.ofString());
    }

    /** The /metrics samples by name. */
    Map<String, Double> metrics() throws Exception {
        Map<String, Double> m = new HashMap<>();
        for (String line : get(base + "/metrics").body().split("\n")) {
            if (line.startsWith("#") || line.isBlank()) continue;
            String[] kv = line.split(" ");
            m.put(kv[0], Double.parseDouble(kv[1]));
        }
        return m;
    }

    /** Waits (bounded) until no request runs or waits and no KV is held. */
    void assertDrained() throws Exception {
        Map<String, Double> m = metrics();
        for (int i = 0; i < 100 && (m.get("fastdms_requests_running") > 0 || m.get("fastdms_kv_bytes_in_use") > 0); i++) {
            Thread.sleep(100);
            m = metrics();
        }
        assertEquals(0.0, m.get("fastdms_requests_running"), "running");
        assertEquals(0.0, m.get("fastdms_requests_waiting"), "waiting");
        assertEquals(0.0, m.get("fastdms_kv_bytes_in_use"), "KV bytes in use");
    }

    @Test
    void eightConcurrentGreedyChatsEqualEachRunAloneStreamingAndNot() throws Exception {
        String[] prompts = {"Once upon a time", "The cat", "Lily wanted", "One day, a big dog", "Tom and Sue", "The sun was", "A little bird", "Mom said"};
        int max = 120;
        List<String> want = new ArrayList<>();
        try (Engine ref = Engine.open(Engine.Options.of(MODEL), ProgressListener.NONE)) {
            for (String p : prompts) want.add(alone(ref, ChatPrompt.encode(ref, List.of(new ChatPrompt.Message("user", p))), max));
        }
        start(8, 16);
        OpenAiChatModel plain = OpenAiChatModel.builder().baseUrl(base + "/v1").apiKey("none").modelName(ID)
                .temperature(0.0).maxTokens(max).timeout(Duration.ofSeconds(60)).maxRetries(0).build();
        OpenAiStreamingChatModel streaming = OpenAiStreamingChatModel.builder().baseUrl(base + "/v1").apiKey("none").modelName(ID)
                .temperature(0.0).maxTokens(max).timeout(Duration.ofSeconds(60)).build();
        CountDownLatch go = new CountDownLatch(1);
        List<Future<ChatResponse>> got = new ArrayList<>();
        List<StringBuilder> streamed = new ArrayList<>();
        try (ExecutorService pool = Executors.newFixedThreadPool(8)) {
            for (int i = 0; i < prompts.length; i++) {
                String p = prompts[i];
                StringBuilder parts = new StringBuilder();
                streamed.add(parts);
                boolean stream = i % 2 == 1;
                got.add(pool.submit(() -> {
                    go.await();
                    if (!stream) return plain.chat(dev.langchain4j.data.message.UserMessage.from(p));
                    CompletableFuture<ChatResponse> f = new CompletableFuture<>();
                    streaming.chat(p, new StreamingChatResponseHandler() {
                        @Override public void onPartialResponse(String s) { parts.append(s); }
                        @Override public void onCompleteResponse(ChatResponse r) { f.complete(r); }
                        @Override public void onError(Throwable t) { f.completeExceptionally(t); }
                    });
                    return f.get(60, TimeUnit.SECONDS);
                }));
            }
            go.countDown();
            for (int i = 0; i < prompts.length; i++) {
                ChatResponse r = got.get(i).get(120, TimeUnit.SECONDS);
                assertEquals(want.get(i), r.aiMessage().text(), "request " + i + " (" + prompts[i] + ")");
                if (i % 2 == 1) assertEquals(want.get(i), streamed.get(i).toString(), "streamed parts of request " + i);
                assertNotNull(r.metadata().finishReason());
                assertTrue(r.tokenUsage().inputTokenCount() > 0);
                if (r.metadata().finishReason() == FinishReason.LENGTH) assertEquals(max, r.tokenUsage().outputTokenCount());
            }
        }
        Map<String, Double> m = metrics();
        assertTrue(m.get("fastdms_decode_batch_max") >= 4, "requests should have decoded together: " + m.get("fastdms_decode_batch_max"));
        assertDrained();
    }

    @Test
    void completionsStopAtAStopStringAndStreamAsServerSentEvents() throws Exception {
        String prompt = "Once upon a time";
        String full;
        try (Engine ref = Engine.open(Engine.Options.of(MODEL), ProgressListener.NONE)) {
            full = alone(ref, ref.encodePrompt(prompt), 60);
        }
        start(4, 8);
        String stop = " was";
        assertTrue(full.contains(stop), full);
        String want = full.substring(0, full.indexOf(stop));
        HttpResponse<String> r = post(base + "/v1/completions",
                "{\"model\":\"" + ID + "\",\"prompt\":\"" + prompt + "\",\"max_tokens\":60,\"temperature\":0,\"stop\":[\"" + stop + "\"]}");
        assertEquals(200, r.statusCode(), r.body());
        JsonNode o = JSON.readTree(r.body());
        assertEquals("text_completion", o.get("object").asText());
        assertEquals(want, o.at("/choices/0/text").asText());
        assertEquals("stop", o.at("/choices/0/finish_reason").asText());

        HttpResponse<String> s = post(base + "/v1/completions",
                "{\"prompt\":\"" + prompt + "\",\"max_tokens\":60,\"temperature\":0,\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
        assertEquals(200, s.statusCode());
        assertTrue(s.headers().firstValue("content-type").orElse("").startsWith("text/event-stream"));
        StringBuilder text = new StringBuilder();
        List<String> events = new ArrayList<>();
        for (String line : s.body().split("\n")) if (line.startsWith("data: ")) events.add(line.substring(6));
        assertEquals("[DONE]", events.getLast());
        JsonNode usage = JSON.readTree(events.get(events.size() - 2)).get("usage");
        assertEquals(60, usage.get("completion_tokens").asInt());
        assertEquals(usage.get("prompt_tokens").asInt() + 60, usage.get("total_tokens").asInt());
        String finish = null;
        for (String e : events.subList(0, events.size() - 2)) {
            JsonNode c = JSON.readTree(e).at("/choices/0");
            text.append(c.get("text").asText());
            if (!c.get("finish_reason").isNull()) finish = c.get("finish_reason").asText();
        }
        assertEquals(full, text.toString());
        assertEquals("length", finish);
        assertDrained();
    }

    @Test
    void badRequestsGetTheirErrorAndTheServerKeepsServing() throws Exception {
        start(2, 4);
        String chat = base + "/v1/chat/completions";
        String ok = "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]";
        Object[][] cases = {
                {chat, "{\"messages\": [", 400, null},
                {chat, "[1, 2]", 400, null},
                {chat, "{\"max_tokens\": 5}", 400, "messages"},
                {chat, "{\"messages\": \"Hi\"}", 400, "messages"},
                {chat, "{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}", 400, "messages[0].role"},
                {chat, "{" + ok + ", \"max_tokens\": \"ten\"}", 400, "max_tokens"},
                {chat, "{" + ok + ", \"max_tokens\": -3}", 400, "max_tokens"},
                {chat, "{" + ok + ", \"max_completion_tokens\": 2.5}", 400, "max_completion_tokens"},
                {chat, "{" + ok + ", \"temperature\": -0.5}", 400, "temperature"},
                {chat, "{" + ok + ", \"temperature\": \"hot\"}", 400, "temperature"},
                {chat, "{" + ok + ", \"top_p\": 1.5}", 400, "top_p"},
                {chat, "{" + ok + ", \"n\": 1000000}", 400, "n"},
                {chat, "{" + ok + ", \"stream\": \"yes\"}", 400, "stream"},
                {chat, "{" + ok + ", \"stop\": [1, 2]}", 400, "stop"},
                {chat, "{" + ok + ", \"model\": \"gpt-4o\"}", 404, "model"},
                {chat, "{\"messages\":[{\"role\":\"user\",\"content\":\"" + "Once upon a time ".repeat(200) + "\"}]}", 413, "messages"},
                {base + "/v1/completions", "{\"prompt\": 42}", 400, "prompt"},
                {base + "/v1/embeddings", "{}", 404, null},
        };
        for (Object[] c : cases) {
            HttpResponse<String> r = post((String) c[0], (String) c[1]);
            assertEquals(c[2], r.statusCode(), c[1] + " -> " + r.body());
            JsonNode e = JSON.readTree(r.body()).get("error");
            assertNotNull(e, r.body());
            assertFalse(e.get("message").asText().isBlank());
            assertEquals(c[3], e.get("param").isNull() ? null : e.get("param").asText(), "param of " + c[1]);
        }
        // a 10 MB body is refused without being read whole
        HttpResponse<String> big = post(chat, "{\"messages\":[{\"role\":\"user\",\"content\":\"" + "a".repeat(10 << 20) + "\"}]}");
        assertEquals(413, big.statusCode());
        assertEquals("request_too_large", JSON.readTree(big.body()).at("/error/code").asText());
        assertEquals(404, get(base + "/nowhere").statusCode());
        // unknown fields are ignored, as the OpenAI API does
        HttpResponse<String> r = post(chat, "{" + ok + ", \"max_tokens\": 5, \"temperature\": 0, \"frobnicate\": {\"x\": 1}, \"logit_bias\": {}}");
        assertEquals(200, r.statusCode(), r.body());
        assertEquals(5, JSON.readTree(r.body()).at("/usage/completion_tokens").asInt());
        JsonNode models = JSON.readTree(get(base + "/v1/models").body());
        assertEquals(ID, models.at("/data/0/id").asText());
        assertEquals("ok", JSON.readTree(get(base + "/health").body()).get("status").asText());
        assertDrained();
    }

    @Test
    void aFullQueueAnswers429() throws Exception {
        start(1, 1);
        // the first request runs (one sequence at a time), the second waits, the third finds the queue full
        Socket first = openStream("{\"prompt\":\"Once\",\"max_tokens\":500,\"temperature\":0,\"stream\":true}");
        readUntil(first.getInputStream(), "data: ");
        CompletableFuture<HttpResponse<String>> second = HTTP.sendAsync(HttpRequest.newBuilder(URI.create(base + "/v1/completions"))
                .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\":\"The\",\"max_tokens\":3}")).build(), HttpResponse.BodyHandlers.ofString());
        for (int i = 0; i < 100 && metrics().get("fastdms_requests_waiting") < 1; i++) Thread.sleep(50);
        HttpResponse<String> third = post(base + "/v1/completions", "{\"prompt\":\"A\",\"max_tokens\":3}");
        assertEquals(429, third.statusCode(), third.body());
        assertEquals("queue_full", JSON.readTree(third.body()).at("/error/code").asText());
        first.close(); // frees the place: the second runs
        assertEquals(200, second.get(60, TimeUnit.SECONDS).statusCode());
        assertDrained();
    }

    @Test
    void aClientThatDisconnectsMidStreamFreesItsSequence() throws Exception {
        start(4, 8);
        Socket s = openStream("{\"prompt\":\"Once upon a time\",\"max_tokens\":490,\"temperature\":0,\"stream\":true}");
        readUntil(s.getInputStream(), "data: ");
        readUntil(s.getInputStream(), "data: ");
        Map<String, Double> m = metrics();
        assertEquals(1.0, m.get("fastdms_requests_running"));
        assertTrue(m.get("fastdms_kv_bytes_in_use") > 0);
        s.close();
        assertDrained();
        assertTrue(metrics().get("fastdms_tokens_generated_total") < 490, "the sequence was cancelled before its end");
    }

    @Test
    void loadOf64RequestsFrom16ClientsLeavesNothingBehind() throws Exception {
        start(8, 64);
        long t0 = System.nanoTime();
        List<Future<Integer>> results = new ArrayList<>();
        try (ExecutorService clients = Executors.newFixedThreadPool(16)) {
            for (int c = 0; c < 16; c++) {
                int client = c;
                results.add(clients.submit(() -> {
                    int tokens = 0;
                    for (int k = 0; k < 4; k++) {
                        boolean stream = (client + k) % 2 == 0;
                        String body = "{\"messages\":[{\"role\":\"user\",\"content\":\"Story " + client + "-" + k + "\"}],\"max_tokens\":" + (8 + 7 * k)
                                + ",\"temperature\":0.8,\"seed\":" + (client * 10 + k) + (stream ? ",\"stream\":true,\"stream_options\":{\"include_usage\":true}" : "") + "}";
                        HttpResponse<String> r = post(base + "/v1/chat/completions", body);
                        if (r.statusCode() != 200) throw new AssertionError(r.statusCode() + " " + r.body());
                        String usageJson = stream ? lastUsageEvent(r.body()) : r.body();
                        tokens += JSON.readTree(usageJson).at("/usage/completion_tokens").asInt();
                    }
                    return tokens;
                }));
            }
            long total = 0;
            for (Future<Integer> f : results) total += f.get(300, TimeUnit.SECONDS);
            assertTrue(total > 0);
            assertTrue(metrics().get("fastdms_requests_finished_total") >= 64);
        }
        assertTrue(System.nanoTime() - t0 < TimeUnit.MINUTES.toNanos(5));
        assertDrained();
    }

    @Test
    void shutdownRefusesNewRequestsAndLetsRunningOnesFinish() throws Exception {
        start(2, 4);
        Socket s = openStream("{\"prompt\":\"Once upon a time\",\"max_tokens\":200,\"temperature\":0,\"stream\":true}");
        InputStream in = s.getInputStream();
        readUntil(in, "data: ");
        Thread stopper = Thread.ofVirtual().start(() -> server.shutdown(Duration.ofSeconds(30)));
        for (int i = 0; i < 100 && get(base + "/health").statusCode() != 503; i++) Thread.sleep(20);
        assertEquals(503, get(base + "/health").statusCode());
        HttpResponse<String> refused = post(base + "/v1/completions", "{\"prompt\":\"A\",\"max_tokens\":3}");
        assertEquals(503, refused.statusCode());
        assertEquals("shutting_down", JSON.readTree(refused.body()).at("/error/code").asText());
        String rest = readUntil(in, "data: [DONE]");
        assertTrue(rest.contains("\"finish_reason\":\"length\""), "the running request finished normally");
        s.close();
        stopper.join(60_000);
        assertFalse(stopper.isAlive());
    }

    /** A streaming completion on a raw connection, so the test can drop it mid-stream. */
    private Socket openStream(String body) throws Exception {
        Socket s = new Socket("127.0.0.1", server.port());
        s.setSoTimeout(60_000);
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        OutputStream out = s.getOutputStream();
        out.write(("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " + b.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
        out.write(b);
        out.flush();
        return s;
    }

    /** Reads until {@code marker} has been seen; returns what was read. */
    private static String readUntil(InputStream in, String marker) throws Exception {
        StringBuilder sb = new StringBuilder();
        int c;
        while ((c = in.read()) >= 0) {
            sb.append((char) c);
            if (sb.length() >= marker.length() && sb.lastIndexOf(marker) == sb.length() - marker.length()) return sb.toString();
        }
        throw new AssertionError("stream ended before '" + marker + "': " + sb);
    }

    private static String lastUsageEvent(String sse) {
        String usage = null;
        for (String line : sse.split("\n")) if (line.startsWith("data: {") && line.contains("\"usage\"")) usage = line.substring(6);
        if (usage == null) throw new AssertionError("no usage event in " + sse);
        return usage;
    }
}
