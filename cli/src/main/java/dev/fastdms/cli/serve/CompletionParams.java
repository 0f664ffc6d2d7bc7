package dev.fastdms.cli.serve;

import com.fasterxml.jackson.databind.JsonNode;
import dev.fastdms.model.Sampler;
import dev.fastdms.model.serving.ChatPrompt;

import java.util.ArrayList;
import java.util.List;

/**
 * The fields of a completion request, checked: a wrong type or value is a 400 naming the field. Fields this server
 * does not know are ignored, as the OpenAI API ignores them; {@code n} must be 1.
 *
 * @param messages  chat messages (chat completions), or null
 * @param prompt    raw prompt text (completions), or null
 * @param maxTokens token limit, or -1 for "until a stop token or the end of the context"
 */
record CompletionParams(String model, List<ChatPrompt.Message> messages, String prompt, int maxTokens, float temperature,
                        float topP, Long seed, List<String> stop, boolean stream, boolean includeUsage) {
    /** Longest stop-string list, as OpenAI allows. */
    static final int MAX_STOPS = 4;

    static CompletionParams parse(JsonNode body, boolean chat) {
        if (body == null || !body.isObject()) throw ApiError.badField(null, "the request body must be a JSON object");
        String model = optText(body, "model");
        List<ChatPrompt.Message> messages = null;
        String prompt = null;
        if (chat) {
            messages = messages(body.get("messages"));
        } else {
            JsonNode p = body.get("prompt");
            if (p == null || p.isNull()) throw ApiError.badField("prompt", "'prompt' is required");
            if (p.isArray() && p.size() == 1 && p.get(0).isTextual()) p = p.get(0);
            if (!p.isTextual()) throw ApiError.badField("prompt", "'prompt' must be a string (or an array of one string)");
            prompt = p.asText();
        }
        JsonNode mt = body.hasNonNull("max_completion_tokens") ? body.get("max_completion_tokens") : body.get("max_tokens");
        String mtName = body.hasNonNull("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
        int maxTokens = -1;
        if (mt != null && !mt.isNull()) {
            if (!mt.isIntegralNumber() || !mt.canConvertToInt()) throw ApiError.badField(mtName, "'" + mtName + "' must be an integer");
            maxTokens = mt.asInt();
            if (maxTokens < 1) throw ApiError.badField(mtName, "'" + mtName + "' must be >= 1, got " + maxTokens);
        }
        float temperature = (float) number(body, "temperature", 1.0, 0, 2);
        float topP = (float) number(body, "top_p", 1.0, 0, 1);
        if (topP == 0) throw ApiError.badField("top_p", "'top_p' must be > 0");
        Long seed = null;
        JsonNode s = body.get("seed");
        if (s != null && !s.isNull()) {
            if (!s.isIntegralNumber() || !s.canConvertToLong()) throw ApiError.badField("seed", "'seed' must be an integer");
            seed = s.asLong();
        }
        JsonNode n = body.get("n");
        if (n != null && !n.isNull()) {
            if (!n.isIntegralNumber()) throw ApiError.badField("n", "'n' must be an integer");
            if (!n.canConvertToInt() || n.asInt() != 1) throw ApiError.badField("n", "only n = 1 is supported, got " + n.asText());
        }
        List<String> stop = stops(body.get("stop"));
        boolean stream = bool(body, "stream");
        boolean includeUsage = false;
        JsonNode so = body.get("stream_options");
        if (so != null && !so.isNull()) {
            if (!so.isObject()) throw ApiError.badField("stream_options", "'stream_options' must be an object");
            includeUsage = bool(so, "include_usage");
        }
        return new CompletionParams(model, messages, prompt, maxTokens, temperature, topP, seed, stop, stream, includeUsage);
    }

    Sampler.Settings sampling() {
        return new Sampler.Settings(temperature, 0, topP, 0f, 1f, 64, seed != null ? seed : System.nanoTime());
    }

    private static List<ChatPrompt.Message> messages(JsonNode m) {
        if (m == null || m.isNull()) throw ApiError.badField("messages", "'messages' is required");
        if (!m.isArray() || m.isEmpty()) throw ApiError.badField("messages", "'messages' must be a non-empty array");
        List<ChatPrompt.Message> out = new ArrayList<>();
        for (int i = 0; i < m.size(); i++) {
            JsonNode msg = m.get(i);
            String at = "messages[" + i + "]";
            if (!msg.isObject()) throw ApiError.badField(at, at + " must be an object");
            JsonNode role = msg.get("role");
            if (role == null || !role.isTextual()) throw ApiError.badField(at + ".role", at + ".role must be a string");
            if (!List.of("system", "developer", "user", "assistant").contains(role.asText())) {
                throw ApiError.badField(at + ".role", "unsupported role '" + role.asText() + "' (system, developer, user, assistant)");
            }
            out.add(new ChatPrompt.Message(role.asText(), content(msg.get("content"), at + ".content")));
        }
        return out;
    }

    /** A string, or an array of text parts ({@code {"type": "text", "text": ...}}) joined. */
    private static String content(JsonNode c, String at) {
        if (c == null || c.isNull()) throw ApiError.badField(at, at + " is required");
        if (c.isTextual()) return c.asText();
        if (!c.isArray()) throw ApiError.badField(at, at + " must be a string or an array of text parts");
        StringBuilder sb = new StringBuilder();
        for (JsonNode part : c) {
            if (!part.isObject() || !"text".equals(part.path("type").asText()) || !part.path("text").isTextual()) {
                throw ApiError.badField(at, at + ": only text parts ({\"type\": \"text\", \"text\": ...}) are supported");
            }
            sb.append(part.get("text").asText());
        }
        return sb.toString();
    }

    private static List<String> stops(JsonNode s) {
        if (s == null || s.isNull()) return List.of();
        List<String> out = new ArrayList<>();
        if (s.isTextual()) out.add(s.asText());
        else if (s.isArray()) {
            for (JsonNode x : s) {
                if (!x.isTextual()) throw ApiError.badField("stop", "'stop' must be a string or an array of strings");
                out.add(x.asText());
            }
        } else throw ApiError.badField("stop", "'stop' must be a string or an array of strings");
        if (out.size() > MAX_STOPS) throw ApiError.badField("stop", "'stop' takes at most " + MAX_STOPS + " strings");
        for (String x : out) if (x.isEmpty()) throw ApiError.badField("stop", "'stop' strings must not be empty");
        return out;
    }

    private static String optText(JsonNode body, String field) {
        JsonNode v = body.get(field);
        if (v == null || v.isNull()) return null;
        if (!v.isTextual()) throw ApiError.badField(field, "'" + field + "' must be a string");
        return v.asText();
    }

    private static double number(JsonNode body, String field, double dflt, double lo, double hi) {
        JsonNode v = body.get(field);
        if (v == null || v.isNull()) return dflt;
        if (!v.isNumber()) throw ApiError.badField(field, "'" + field + "' must be a number");
        double d = v.asDouble();
        if (!(d >= lo && d <= hi)) throw ApiError.badField(field, "'" + field + "' must be in [" + lo + ", " + hi + "], got " + v.asText());
        return d;
    }

    private static boolean bool(JsonNode body, String field) {
        JsonNode v = body.get(field);
        if (v == null || v.isNull()) return false;
        if (!v.isBoolean()) throw ApiError.badField(field, "'" + field + "' must be a boolean");
        return v.asBoolean();
    }
}
