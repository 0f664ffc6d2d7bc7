package dev.fastdms.cli.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.fastdms.model.ContextOverflowException;
import dev.fastdms.model.Engine;
import dev.fastdms.model.Sampler;
import dev.fastdms.model.serving.ChatPrompt;
import dev.fastdms.model.serving.Completion;
import dev.fastdms.model.serving.FinishReason;
import dev.fastdms.model.serving.RejectedException;
import dev.fastdms.model.serving.Request;
import dev.fastdms.model.serving.Scheduler;
import dev.fastdms.model.tokenizer.StreamDecoder;
import io.helidon.http.sse.SseEvent;
import io.helidon.webserver.http.ServerRequest;
import io.helidon.webserver.http.ServerResponse;
import io.helidon.webserver.sse.SseSink;

import java.util.UUID;
import java.util.concurrent.atomic.AtomicLong;

/**
 * {@code POST /v1/chat/completions} (messages in the model's chat format) and {@code POST /v1/completions} (a raw
 * prompt): checks the request, queues it on the scheduler, and answers with one JSON object or a stream of
 * server-sent events ({@code data: {chunk}} ... {@code data: [DONE]}). Runs on the request's virtual thread; a
 * client that is gone when a chunk is written has its request cancelled, which frees its KV memory.
 */
final class CompletionEndpoint {
    private final Engine engine;
    private final Scheduler scheduler;
    private final String modelId;
    private final ObjectMapper om;
    private final boolean chat;
    private final int[] chatStops;
    final AtomicLong accepted = new AtomicLong(), rejected = new AtomicLong();

    CompletionEndpoint(Engine engine, Scheduler scheduler, String modelId, ObjectMapper om, boolean chat) {
        this.engine = engine;
        this.scheduler = scheduler;
        this.modelId = modelId;
        this.om = om;
        this.chat = chat;
        this.chatStops = engine.chatFormat() == null ? new int[0] : engine.chatFormat().stopTokens();
    }

    void handle(JsonNode body, ServerResponse res) throws Exception {
        CompletionParams p = CompletionParams.parse(body, chat);
        if (p.model() != null && !p.model().equals(modelId)) {
            throw new ApiError(404, "invalid_request_error", "model", "model_not_found", "the model '" + p.model() + "' does not exist (this server serves '" + modelId + "')");
        }
        Sampler.Settings settings;
        try {
            settings = p.sampling();
        } catch (IllegalArgumentException e) {
            throw ApiError.badField(null, e.getMessage());
        }
        int[] prompt;
        try {
            prompt = chat ? ChatPrompt.encode(engine, p.messages()) : engine.encodePrompt(p.prompt());
        } catch (IllegalArgumentException e) {
            throw ApiError.badField(chat ? "messages" : "prompt", e.getMessage());
        }
        int ctx = engine.config().contextLength();
        if (prompt.length >= ctx) {
            throw new ApiError(413, "invalid_request_error", chat ? "messages" : "prompt", "context_length_exceeded",
                    "the prompt has " + prompt.length + " tokens; this model's context is " + ctx + " tokens and must leave room for at least one generated token");
        }
        int maxTokens = p.maxTokens() < 0 ? ctx - prompt.length : Math.min(p.maxTokens(), ctx - prompt.length);
        TokenStream tokens = new TokenStream();
        Request request = new Request(prompt, maxTokens, new Sampler(settings), this::isStop, tokens);
        try {
            scheduler.submit(request);
        } catch (RejectedException e) {
            rejected.incrementAndGet();
            if (e.why() == RejectedException.Why.QUEUE_FULL) throw new ApiError(429, "rate_limit_exceeded", null, "queue_full", e.getMessage());
            throw new ApiError(503, "server_error", null, "shutting_down", e.getMessage());
        } catch (ContextOverflowException e) {
            throw new ApiError(413, "invalid_request_error", chat ? "messages" : "prompt", "context_length_exceeded", e.getMessage());
        }
        accepted.incrementAndGet();
        Answer a = new Answer(p, prompt, request, tokens);
        if (p.stream()) a.stream(res);
        else a.whole(res);
    }

    private boolean isStop(int id) {
        if (engine.isStop(id)) return true;
        for (int s : chatStops) if (s == id) return true;
        return false;
    }

    // Events are written "data: {json}" as OpenAI writes them: Helidon puts nothing after "data:", and SSE readers
    // drop one leading space of the data.

    /** One request's answer: its text as it forms, its stop strings, and how it ended. */
    private final class Answer {
        final CompletionParams p;
        final Request request;
        final TokenStream tokens;
        final StreamDecoder text;
        final StopStrings stops;
        final String id = (chat ? "chatcmpl-" : "cmpl-") + UUID.randomUUID().toString().replace("-", "");
        final long created = System.currentTimeMillis() / 1000;
        Completion done;

        Answer(CompletionParams p, int[] prompt, Request request, TokenStream tokens) {
            this.p = p;
            this.request = request;
            this.tokens = tokens;
            this.text = engine.tokenizer() == null ? null : engine.textStream(prompt);
            this.stops = new StopStrings(p.stop());
        }

        /** Text to send for the next event, or null when the completion came (then {@link #done} is set). */
        String next() throws InterruptedException {
            while (true) {
                Object ev = tokens.next(30);
                if (ev == null) continue;
                if (ev instanceof Completion c) {
                    done = c;
                    return null;
                }
                int tok = (Integer) ev;
                if (stops.matched() || isStop(tok)) return "";
                String piece = stops.feed(text == null ? " " + tok : text.next(tok));
                if (stops.matched()) {
                    request.cancel(); // the stop string ends it; the scheduler frees the sequence at its next step
                    scheduler.wake();
                }
                return piece;
            }
        }

        String tail() {
            String rest = stops.matched() || text == null ? "" : text.flush();
            return stops.feed(rest) + stops.flush();
        }

        String finishReason() {
            if (stops.matched() || done.reason() == FinishReason.STOP) return "stop";
            return "length";
        }

        /** A note for endings a client may not expect, or null. */
        String note() {
            if (stops.matched()) return null;
            return done.note();
        }

        void whole(ServerResponse res) throws Exception {
            StringBuilder sb = new StringBuilder();
            for (String s; (s = next()) != null; ) sb.append(s);
            sb.append(tail());
            if (done.reason() == FinishReason.CANCELLED && !stops.matched()) {
                throw new ApiError(503, "server_error", null, "shutting_down", done.note() != null ? done.note() : "the request was cancelled");
            }
            if (done.reason() == FinishReason.ERROR) throw new ApiError(500, "server_error", null, null, done.note());
            ObjectNode o = envelope(chat ? "chat.completion" : "text_completion");
            ObjectNode choice = o.putArray("choices").addObject();
            choice.put("index", 0);
            if (chat) {
                ObjectNode m = choice.putObject("message");
                m.put("role", "assistant");
                m.put("content", sb.toString());
            } else {
                choice.put("text", sb.toString());
            }
            choice.putNull("logprobs");
            choice.put("finish_reason", finishReason());
            usage(o);
            extra(o);
            res.header("Content-Type", "application/json");
            res.send(om.writeValueAsBytes(o));
        }

        void stream(ServerResponse res) throws Exception {
            SseSink sink = res.sink(SseSink.TYPE);
            try {
                if (chat) emit(sink, chunk(null, true, null));
                for (String s; (s = next()) != null; ) if (!s.isEmpty()) emit(sink, chunk(s, false, null));
                String tail = tail();
                if (!tail.isEmpty()) emit(sink, chunk(tail, false, null));
                if (done.reason() == FinishReason.ERROR) {
                    emit(sink, new ApiError(500, "server_error", null, null, done.note()).toJson(om));
                } else {
                    ObjectNode last = chunk(null, false, finishReason());
                    extra(last);
                    emit(sink, last);
                    if (p.includeUsage()) {
                        ObjectNode u = envelope(chat ? "chat.completion.chunk" : "text_completion");
                        u.putArray("choices");
                        usage(u);
                        emit(sink, u);
                    }
                }
                sink.emit(SseEvent.create(" [DONE]"));
                sink.close();
            } catch (RuntimeException e) {
                // the client went away (a write failed): cancel, so the scheduler returns the sequence's memory now
                request.cancel();
                scheduler.wake();
                if (done == null) drain();
            }
        }

        /** Waits (bounded) for the scheduler to let go of the cancelled request. */
        private void drain() {
            try {
                long until = System.nanoTime() + 120_000_000_000L;
                while (done == null && System.nanoTime() < until) if (tokens.next(1) instanceof Completion c) done = c;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }

        private void emit(SseSink sink, ObjectNode o) throws Exception {
            sink.emit(SseEvent.create(" " + om.writeValueAsString(o)));
        }

        private ObjectNode envelope(String object) {
            ObjectNode o = om.createObjectNode();
            o.put("id", id);
            o.put("object", object);
            o.put("created", created);
            o.put("model", modelId);
            return o;
        }

        private ObjectNode chunk(String content, boolean role, String finish) {
            ObjectNode o = envelope(chat ? "chat.completion.chunk" : "text_completion");
            ObjectNode c = o.putArray("choices").addObject();
            c.put("index", 0);
            if (chat) {
                ObjectNode d = c.putObject("delta");
                if (role) { d.put("role", "assistant"); d.put("content", ""); }
                if (content != null) d.put("content", content);
            } else {
                c.put("text", content == null ? "" : content);
            }
            c.putNull("logprobs");
            if (finish == null) c.putNull("finish_reason");
            else c.put("finish_reason", finish);
            return o;
        }

        private void usage(ObjectNode o) {
            ObjectNode u = o.putObject("usage");
            u.put("prompt_tokens", done.promptTokens());
            u.put("completion_tokens", done.completionTokens());
            u.put("total_tokens", done.promptTokens() + done.completionTokens());
        }

        /** fastdms's own fields (clients ignore them): preemptions and a note on unusual endings. */
        private void extra(ObjectNode o) {
            String note = note();
            if (note == null && done.preemptions() == 0) return;
            ObjectNode f = o.putObject("fastdms");
            f.put("preemptions", done.preemptions());
            if (note != null) f.put("note", note);
        }
    }
}
