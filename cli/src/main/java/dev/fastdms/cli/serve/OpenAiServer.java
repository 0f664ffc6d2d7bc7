package dev.fastdms.cli.serve;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.fastdms.model.Engine;
import dev.fastdms.model.serving.Scheduler;
import io.helidon.http.Status;
import io.helidon.webserver.WebServer;
import io.helidon.webserver.http.HttpRouting;
import io.helidon.webserver.http.ServerRequest;
import io.helidon.webserver.http.ServerResponse;

import java.io.IOException;
import java.io.InputStream;
import java.time.Duration;

/**
 * The OpenAI-compatible HTTP interface over a {@link Scheduler}: Helidon SE (a virtual thread per request) routes
 * {@code /v1/chat/completions}, {@code /v1/completions}, {@code /v1/models}, {@code /health} and {@code /metrics};
 * everything else is a 404 error object. The engine belongs to the scheduler's thread; handlers only queue requests
 * and read their tokens.
 */
public final class OpenAiServer implements AutoCloseable {
    /** Largest request body read (a bigger one is a 413): far above any prompt that fits a context. */
    public static final int MAX_BODY_BYTES = 4 << 20;

    private final Scheduler scheduler;
    private final String modelId;
    private final ObjectMapper om = new ObjectMapper();
    private final CompletionEndpoint chat, text;
    private final WebServer server;
    private volatile boolean closing;

    public OpenAiServer(Engine engine, Scheduler scheduler, String modelId, String host, int port) {
        this.scheduler = scheduler;
        this.modelId = modelId;
        this.chat = new CompletionEndpoint(engine, scheduler, modelId, om, true);
        this.text = new CompletionEndpoint(engine, scheduler, modelId, om, false);
        this.server = WebServer.builder()
                .host(host)
                .port(port)
                .shutdownHook(false) // the command shuts down in order: HTTP intake, scheduler, engine
                .routing(this::routes)
                .build();
    }

    public OpenAiServer start() {
        server.start();
        return this;
    }

    /** The port bound (the ephemeral one when 0 was asked for). */
    public int port() { return server.port(); }

    public String modelId() { return modelId; }

    private void routes(HttpRouting.Builder r) {
        r.post("/v1/chat/completions", (req, res) -> generate(chat, req, res))
                .post("/v1/completions", (req, res) -> generate(text, req, res))
                .get("/v1/models", (req, res) -> json(res, 200, models()))
                .get("/v1/models/{id}", (req, res) -> {
                    String id = req.path().pathParameters().get("id");
                    if (!id.equals(modelId)) throw new ApiError(404, "invalid_request_error", "model", "model_not_found", "the model '" + id + "' does not exist");
                    json(res, 200, model());
                })
                .get("/health", (req, res) -> {
                    ObjectNode o = om.createObjectNode().put("status", closing ? "shutting_down" : "ok").put("model", modelId);
                    json(res, closing ? 503 : 200, o);
                })
                .get("/metrics", (req, res) -> {
                    res.header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
                    res.send(Metrics.render(scheduler.stats(), chat.accepted.get() + text.accepted.get(), chat.rejected.get() + text.rejected.get()));
                })
                .any((req, res) -> {
                    throw new ApiError(404, "invalid_request_error", null, "unknown_url",
                            "unknown route: " + req.prologue().method().text() + " " + req.path().path());
                })
                .error(ApiError.class, (req, res, e) -> error(res, e))
                .error(Exception.class, (req, res, e) -> error(res, new ApiError(500, "server_error", null, null, String.valueOf(e.getMessage()))));
    }

    private void generate(CompletionEndpoint endpoint, ServerRequest req, ServerResponse res) throws Exception {
        if (closing) throw new ApiError(503, "server_error", null, "shutting_down", "the server is shutting down");
        endpoint.handle(readJson(req), res);
    }

    /** The body as JSON: at most {@link #MAX_BODY_BYTES} (else 413); malformed JSON is a 400. */
    private JsonNode readJson(ServerRequest req) throws IOException {
        long declared = req.headers().contentLength().orElse(-1L);
        if (declared > MAX_BODY_BYTES) throw tooLarge();
        byte[] body;
        try (InputStream in = req.content().inputStream()) {
            body = in.readNBytes(MAX_BODY_BYTES + 1);
        }
        if (body.length > MAX_BODY_BYTES) throw tooLarge();
        try {
            return om.readTree(body);
        } catch (JsonProcessingException e) {
            throw ApiError.badField(null, "malformed JSON: " + e.getOriginalMessage());
        }
    }

    private static ApiError tooLarge() {
        return new ApiError(413, "invalid_request_error", null, "request_too_large", "the request body is larger than " + MAX_BODY_BYTES + " bytes");
    }

    private ObjectNode models() {
        ObjectNode o = om.createObjectNode().put("object", "list");
        o.putArray("data").add(model());
        return o;
    }

    private ObjectNode model() {
        return om.createObjectNode().put("id", modelId).put("object", "model").put("created", 0).put("owned_by", "fastdms");
    }

    private void error(ServerResponse res, ApiError e) {
        if (res.isSent()) return;
        try {
            json(res, e.status(), e.toJson(om));
        } catch (JsonProcessingException ex) {
            res.status(Status.INTERNAL_SERVER_ERROR_500).send();
        }
    }

    private void json(ServerResponse res, int status, ObjectNode o) throws JsonProcessingException {
        res.status(Status.create(status));
        res.header("Content-Type", "application/json");
        res.send(om.writeValueAsBytes(o));
    }

    /**
     * Shuts down in order: new requests get 503, running ones finish for up to {@code grace} (then are cancelled),
     * then the HTTP server stops. The engine stays open (its owner closes it).
     */
    public void shutdown(Duration grace) {
        closing = true;
        scheduler.shutdown(grace);
        server.stop();
    }

    @Override
    public void close() { shutdown(Duration.ZERO); }
}
