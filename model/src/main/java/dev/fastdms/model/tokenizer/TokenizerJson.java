package dev.fastdms.model.tokenizer;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.fastdms.model.format.ModelFormatException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Hugging Face {@code tokenizer.json} (byte-level BPE: Llama 3, Qwen) with the {@code tokenizer_config.json} beside
 * it, which names BOS/EOS, whether BOS is added, and the chat template.
 */
final class TokenizerJson {
    private static final ObjectMapper JSON = new ObjectMapper();

    private TokenizerJson() {}

    static Tokenizer load(Path file) {
        JsonNode root = read(file, "tokenizer.json");
        JsonNode model = root.path("model");
        String type = model.path("type").asText("");
        if (!type.equals("BPE")) throw new ModelFormatException(file + ": unsupported tokenizer model type '" + type + "' (BPE is supported)");
        if (model.path("byte_fallback").asBoolean(false)) {
            throw new ModelFormatException(file + ": SentencePiece-style BPE with byte fallback is not supported from tokenizer.json (use the GGUF or llama2.c tokenizer)");
        }
        JsonNode vocabNode = model.path("vocab");
        if (!vocabNode.isObject() || vocabNode.isEmpty()) throw new ModelFormatException(file + ": tokenizer.json has no model.vocab");
        int size = 0;
        for (Iterator<JsonNode> it = vocabNode.elements(); it.hasNext(); ) size = Math.max(size, it.next().asInt() + 1);
        for (JsonNode a : root.path("added_tokens")) size = Math.max(size, a.path("id").asInt() + 1);
        String[] pieces = new String[size];
        TokenType[] types = new TokenType[size];
        for (Iterator<Map.Entry<String, JsonNode>> it = vocabNode.fields(); it.hasNext(); ) {
            var e = it.next();
            int id = e.getValue().asInt(-1);
            if (id < 0) throw new ModelFormatException(file + ": bad id for vocabulary entry '" + e.getKey() + "'");
            pieces[id] = e.getKey();
            types[id] = TokenType.NORMAL;
        }
        // added tokens are literal text, cut out before BPE; "special" ones are control tokens that carry no text
        for (JsonNode a : root.path("added_tokens")) {
            int id = a.path("id").asInt();
            pieces[id] = a.path("content").asText();
            types[id] = a.path("special").asBoolean(true) ? TokenType.CONTROL : TokenType.USER_DEFINED;
        }
        for (int i = 0; i < size; i++) if (pieces[i] == null) { pieces[i] = "<unused" + i + ">"; types[i] = TokenType.UNUSED; }
        List<String> merges = new ArrayList<>();
        for (JsonNode m : model.path("merges")) merges.add(m.isArray() ? m.get(0).asText() + " " + m.get(1).asText() : m.asText());

        String pattern = splitPattern(root.path("pre_tokenizer"));
        if (pattern == null) pattern = usesByteLevelRegex(root.path("pre_tokenizer")) ? ByteLevelBpe.GPT2_PATTERN : ByteLevelBpe.LLAMA3_PATTERN;
        boolean nfc = hasNormalizer(root.path("normalizer"), "NFC");

        JsonNode cfg = readConfig(file);
        Map<String, Integer> byPiece = new java.util.HashMap<>();
        for (int i = 0; i < size; i++) byPiece.putIfAbsent(pieces[i], i);
        String bosText = cfg == null ? null : tokenText(cfg.get("bos_token"));
        String eosText = cfg == null ? null : tokenText(cfg.get("eos_token"));
        int bos = byPiece.getOrDefault(bosText == null ? "<|begin_of_text|>" : bosText, -1);
        boolean addBos = bosText != null && (cfg.get("add_bos_token") == null || cfg.get("add_bos_token").asBoolean());
        // Qwen names no BOS; llama.cpp's Qwen GGUFs use <|endoftext|> (never added), which keeps bos() a real id
        if (bos < 0) bos = byPiece.getOrDefault("<|endoftext|>", -1);
        int eos = byPiece.getOrDefault(eosText == null ? "" : eosText, -1);
        Set<Integer> stops = new HashSet<>();
        Tokenizers.addNamedStops(pieces, types, stops);
        if (eos < 0) eos = stops.stream().mapToInt(Integer::intValue).min().orElse(-1);

        String name = size > 150000 ? "qwen" : size > 128000 ? "llama3" : "bpe";
        Vocabulary v = new Vocabulary(pieces, types, bos, eos, stops, addBos);
        return new ByteLevelBpe(name + " (tokenizer.json)", v, merges, pattern, model.path("ignore_merges").asBoolean(false), nfc, chatTemplate(cfg));
    }

    private static JsonNode read(Path file, String what) {
        try {
            return JSON.readTree(file.toFile());
        } catch (JsonProcessingException e) {
            throw new ModelFormatException(file + ": not a valid " + what + " (" + e.getOriginalMessage().lines().findFirst().orElse("") + " at line "
                    + (e.getLocation() == null ? "?" : e.getLocation().getLineNr()) + ")");
        } catch (IOException e) {
            throw new ModelFormatException(file + ": cannot read (" + e.getMessage() + ")");
        }
    }

    /** tokenizer_config.json beside a tokenizer.json, or null when there is none. */
    static JsonNode readConfig(Path tokenizerJson) {
        Path p = tokenizerJson.resolveSibling("tokenizer_config.json");
        return Files.isRegularFile(p) ? read(p, "tokenizer_config.json") : null;
    }

    /** The chat template in a tokenizer_config.json: a string, or the "default" of a list of named templates. */
    static String chatTemplate(JsonNode cfg) {
        JsonNode t = cfg == null ? null : cfg.get("chat_template");
        if (t == null) return null;
        if (t.isTextual()) return t.asText();
        for (JsonNode named : t) if ("default".equals(named.path("name").asText())) return named.path("template").asText(null);
        return null;
    }

    /** A special token in tokenizer_config.json: a string or an AddedToken object. */
    private static String tokenText(JsonNode n) {
        if (n == null || n.isNull()) return null;
        return n.isTextual() ? n.asText() : n.path("content").asText(null);
    }

    private static String splitPattern(JsonNode pre) {
        if (pre.isMissingNode() || pre.isNull()) return null;
        if ("Split".equals(pre.path("type").asText()) && pre.path("pattern").has("Regex")) return pre.path("pattern").get("Regex").asText();
        for (JsonNode child : pre.path("pretokenizers")) {
            String s = splitPattern(child);
            if (s != null) return s;
        }
        return null;
    }

    private static boolean usesByteLevelRegex(JsonNode pre) {
        if ("ByteLevel".equals(pre.path("type").asText())) return pre.path("use_regex").asBoolean(true);
        for (JsonNode child : pre.path("pretokenizers")) if (usesByteLevelRegex(child)) return true;
        return false;
    }

    private static boolean hasNormalizer(JsonNode n, String type) {
        if (n.isMissingNode() || n.isNull()) return false;
        if (type.equals(n.path("type").asText())) return true;
        for (JsonNode child : n.path("normalizers")) if (hasNormalizer(child, type)) return true;
        return false;
    }
}
