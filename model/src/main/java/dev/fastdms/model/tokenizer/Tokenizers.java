package dev.fastdms.model.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.fastdms.model.format.ModelFile;
import dev.fastdms.model.format.ModelFormatException;

import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** Finds and loads a model's tokenizer: from GGUF metadata, a Hugging Face tokenizer.json, or a llama2.c tokenizer.bin. */
public final class Tokenizers {
    private Tokenizers() {}

    /** Stop tokens recognised by name in any vocabulary (end of text, end of turn). */
    static final List<String> STOP_NAMES = List.of("<|eot_id|>", "<|end_of_text|>", "<|eom_id|>", "<|im_end|>", "<|endoftext|>", "</s>");

    /** The tokenizer the model carries or sits beside, or null when there is none. */
    public static Tokenizer forModel(ModelFile mf) {
        Map<String, Object> md = mf.metadata();
        if (md.get("tokenizer.ggml.model") instanceof String) return fromGguf(md, mf.path().toString());
        if (mf.tokenizerFile() != null) return load(mf.tokenizerFile());
        return null;
    }

    /** A tokenizer file: tokenizer.json (HF) or a llama2.c tokenizer .bin. */
    public static Tokenizer load(Path file) {
        if (!Files.isRegularFile(file)) throw new ModelFormatException(file + ": no such tokenizer file");
        if (file.getFileName().toString().endsWith(".json")) return fromTokenizerJson(file);
        return fromLlama2c(file);
    }

    // ---- GGUF ----

    public static Tokenizer fromGguf(Map<String, Object> md, String where) {
        String model = (String) md.get("tokenizer.ggml.model");
        if (!(md.get("tokenizer.ggml.tokens") instanceof String[] tokens)) throw new ModelFormatException(where + ": GGUF tokenizer has no tokens");
        int[] types = md.get("tokenizer.ggml.token_type") instanceof int[] t ? t : null;
        int bos = intOr(md.get("tokenizer.ggml.bos_token_id"), -1);
        int eos = intOr(md.get("tokenizer.ggml.eos_token_id"), -1);
        switch (model) {
            case "llama" -> {
                float[] scores = md.get("tokenizer.ggml.scores") instanceof float[] s ? s : new float[tokens.length];
                boolean[] control = new boolean[tokens.length];
                for (int i = 0; i < tokens.length; i++) control[i] = types != null ? (types[i] == 3 || types[i] == 2) : (i < 3);
                boolean prefix = !(md.get("tokenizer.ggml.add_space_prefix") instanceof Boolean b) || b;
                return new SentencePieceBpe("llama (GGUF)", tokens, scores, control, "\u2581", prefix, bos < 0 ? 1 : bos, eos < 0 ? 2 : eos);
            }
            case "gpt2" -> {
                if (!(md.get("tokenizer.ggml.merges") instanceof String[] merges)) throw new ModelFormatException(where + ": GGUF BPE tokenizer has no merges");
                boolean[] special = new boolean[tokens.length];
                for (int i = 0; i < tokens.length; i++) special[i] = types != null && (types[i] == 3 || types[i] == 4);
                String pre = md.get("tokenizer.ggml.pre") instanceof String p ? p : "llama-bpe";
                String pattern = pre.startsWith("qwen") ? ByteLevelBpe.QWEN2_PATTERN : ByteLevelBpe.LLAMA3_PATTERN;
                Set<Integer> stops = stops(tokens, eos);
                int eot = intOr(md.get("tokenizer.ggml.eot_token_id"), -1);
                if (eot >= 0) stops.add(eot);
                return new ByteLevelBpe(pre + " (GGUF)", tokens, special, Arrays.asList(merges), pattern, pre.equals("llama-bpe"), bos, stops);
            }
            default -> throw new ModelFormatException(where + ": unsupported tokenizer model '" + model + "' (llama and gpt2 are supported)");
        }
    }

    private static Set<Integer> stops(String[] tokens, int eos) {
        Set<Integer> s = new HashSet<>();
        if (eos >= 0) s.add(eos);
        for (int i = 0; i < tokens.length; i++) if (STOP_NAMES.contains(tokens[i]) && !tokens[i].equals("</s>")) s.add(i);
        return s;
    }

    private static int intOr(Object o, int d) { return o instanceof Number n ? n.intValue() : d; }

    // ---- Hugging Face tokenizer.json ----

    public static Tokenizer fromTokenizerJson(Path file) {
        ObjectMapper om = new ObjectMapper();
        JsonNode root;
        try {
            root = om.readTree(file.toFile());
        } catch (IOException e) {
            throw new ModelFormatException(file + ": not a valid tokenizer.json");
        }
        JsonNode model = root.path("model");
        if (!"BPE".equals(model.path("type").asText())) {
            throw new ModelFormatException(file + ": unsupported tokenizer model type '" + model.path("type").asText() + "' (BPE is supported)");
        }
        JsonNode vocab = model.path("vocab");
        int size = 0;
        for (Iterator<JsonNode> it = vocab.elements(); it.hasNext(); ) size = Math.max(size, it.next().asInt() + 1);
        for (JsonNode a : root.path("added_tokens")) size = Math.max(size, a.path("id").asInt() + 1);
        String[] pieces = new String[size];
        boolean[] special = new boolean[size];
        for (Iterator<Map.Entry<String, JsonNode>> it = vocab.fields(); it.hasNext(); ) {
            var e = it.next();
            pieces[e.getValue().asInt()] = e.getKey();
        }
        for (JsonNode a : root.path("added_tokens")) {
            int id = a.path("id").asInt();
            pieces[id] = a.path("content").asText();
            special[id] = a.path("special").asBoolean(true);
        }
        for (int i = 0; i < size; i++) if (pieces[i] == null) { pieces[i] = "<unused" + i + ">"; special[i] = true; }
        List<String> merges = new ArrayList<>();
        for (JsonNode m : model.path("merges")) {
            merges.add(m.isArray() ? m.get(0).asText() + " " + m.get(1).asText() : m.asText());
        }
        String pattern = findSplitPattern(root.path("pre_tokenizer"));
        if (pattern == null) pattern = ByteLevelBpe.LLAMA3_PATTERN;
        boolean ignoreMerges = model.path("ignore_merges").asBoolean(false);
        // BOS/EOS from tokenizer_config.json beside it, else by name
        JsonNode cfg = readConfig(file);
        int bos = idOf(pieces, tokenText(cfg == null ? null : cfg.get("bos_token")));
        if (bos < 0) bos = idOf(pieces, "<|begin_of_text|>");
        int eos = idOf(pieces, tokenText(cfg == null ? null : cfg.get("eos_token")));
        Set<Integer> stops = stops(pieces, eos);
        String name = pieces.length > 150000 ? "qwen" : pieces.length > 128000 ? "llama3" : "bpe";
        return new ByteLevelBpe(name + " (tokenizer.json)", pieces, special, merges, pattern, ignoreMerges, bos, stops);
    }

    /**
     * A tokenizer.json as GGUF tokenizer metadata (tokenizer.ggml.*), padded with unused control tokens up to
     * {@code vocabSize}, so a GGUF file can carry it.
     */
    public static Map<String, Object> ggufMetadata(Path tokenizerJson, int vocabSize) {
        ByteLevelBpe t = (ByteLevelBpe) fromTokenizerJson(tokenizerJson);
        if (t.vocabSize() > vocabSize) throw new ModelFormatException(tokenizerJson + ": " + t.vocabSize() + " tokens do not fit a vocabulary of " + vocabSize);
        String[] tokens = new String[vocabSize];
        int[] types = new int[vocabSize];
        for (int i = 0; i < vocabSize; i++) {
            tokens[i] = i < t.vocabSize() ? t.piece(i) : "<unused" + i + ">";
            types[i] = i >= t.vocabSize() || t.isSpecial(i) ? 3 : 1;
        }
        Map<String, Object> md = new java.util.LinkedHashMap<>();
        boolean qwen = t.id("<|im_start|>") >= 0;
        md.put("tokenizer.ggml.model", "gpt2");
        md.put("tokenizer.ggml.pre", qwen ? "qwen2" : "llama-bpe");
        md.put("tokenizer.ggml.tokens", tokens);
        md.put("tokenizer.ggml.token_type", types);
        md.put("tokenizer.ggml.merges", t.merges());
        if (t.bos() >= 0) md.put("tokenizer.ggml.bos_token_id", t.bos());
        int eos = t.firstStop();
        if (eos >= 0) md.put("tokenizer.ggml.eos_token_id", eos);
        String tpl = chatTemplate(tokenizerJson);
        if (tpl != null) md.put("tokenizer.chat_template", tpl);
        return md;
    }

    /** The chat template of the tokenizer_config.json beside a tokenizer.json, or null. */
    public static String chatTemplate(Path tokenizerJson) {
        JsonNode cfg = readConfig(tokenizerJson);
        return cfg != null && cfg.get("chat_template") != null && cfg.get("chat_template").isTextual() ? cfg.get("chat_template").asText() : null;
    }

    private static JsonNode readConfig(Path tokenizerJson) {
        Path p = tokenizerJson.resolveSibling("tokenizer_config.json");
        if (!Files.isRegularFile(p)) return null;
        try {
            return new ObjectMapper().readTree(p.toFile());
        } catch (IOException e) {
            throw new ModelFormatException(p + ": not valid JSON");
        }
    }

    private static String tokenText(JsonNode n) {
        if (n == null || n.isNull()) return null;
        return n.isTextual() ? n.asText() : n.path("content").asText(null);
    }

    private static int idOf(String[] pieces, String s) {
        if (s == null) return -1;
        for (int i = 0; i < pieces.length; i++) if (s.equals(pieces[i])) return i;
        return -1;
    }

    private static String findSplitPattern(JsonNode pre) {
        if (pre == null || pre.isMissingNode() || pre.isNull()) return null;
        if ("Split".equals(pre.path("type").asText())) {
            JsonNode p = pre.path("pattern");
            if (p.has("Regex")) return p.get("Regex").asText();
        }
        for (JsonNode child : pre.path("pretokenizers")) {
            String s = findSplitPattern(child);
            if (s != null) return s;
        }
        return null;
    }

    // ---- llama2.c tokenizer.bin ----

    /** int32 max_token_length, then per token: float32 score, int32 length, bytes (all little-endian). */
    public static Tokenizer fromLlama2c(Path file) {
        byte[] all;
        try {
            all = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new ModelFormatException(file + ": cannot read (" + e.getMessage() + ")");
        }
        ByteBuffer b = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN);
        List<String> pieces = new ArrayList<>();
        List<Float> scores = new ArrayList<>();
        try {
            int maxLen = b.getInt();
            if (maxLen <= 0 || maxLen > 1024) throw new ModelFormatException(file + ": not a llama2.c tokenizer (max token length " + maxLen + ")");
            while (b.hasRemaining()) {
                float score = b.getFloat();
                int len = b.getInt();
                if (len < 0 || len > maxLen || len > b.remaining()) throw new ModelFormatException(file + ": corrupt llama2.c tokenizer (token length " + len + ")");
                byte[] s = new byte[len];
                b.get(s);
                pieces.add(new String(s, StandardCharsets.UTF_8));
                scores.add(score);
            }
        } catch (java.nio.BufferUnderflowException e) {
            throw new ModelFormatException(file + ": truncated llama2.c tokenizer");
        }
        int n = pieces.size();
        if (n < 3) throw new ModelFormatException(file + ": llama2.c tokenizer has only " + n + " tokens");
        float[] sc = new float[n];
        for (int i = 0; i < n; i++) sc[i] = scores.get(i);
        boolean[] control = new boolean[n];
        control[0] = control[1] = control[2] = true; // <unk>, <s>, </s>
        return new SentencePieceBpe("llama2.c", pieces.toArray(new String[0]), sc, control, " ", true, 1, 2);
    }
}
