package dev.fastdms.model.tokenizer;

import dev.fastdms.model.format.GGUF;
import dev.fastdms.model.format.ModelFile;
import dev.fastdms.model.format.ModelFormatException;

import java.io.IOException;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Finds and loads a model's tokenizer: from GGUF metadata, a Hugging Face tokenizer.json (with the
 * tokenizer_config.json beside it), or a llama2.c tokenizer .bin. Broken input fails with a one-line
 * {@link ModelFormatException} that names the file.
 */
public final class Tokenizers {
    private Tokenizers() {}

    /** Control tokens that end a generation when a byte-level vocabulary has them (end of text, end of turn). */
    static final List<String> STOP_NAMES = List.of("<|eot_id|>", "<|end_of_text|>", "<|eom_id|>", "<|im_end|>", "<|endoftext|>");

    /** The tokenizer the model carries or sits beside, or null when there is none. */
    public static Tokenizer forModel(ModelFile mf) {
        Map<String, Object> md = mf.metadata();
        if (md.get("tokenizer.ggml.model") instanceof String) return fromGguf(md, mf.path().toString());
        if (mf.tokenizerFile() != null) return load(mf.tokenizerFile());
        return null;
    }

    /** A tokenizer file: tokenizer.json (HF), a GGUF file's tokenizer metadata, or a llama2.c tokenizer .bin. */
    public static Tokenizer load(Path file) {
        if (!Files.isRegularFile(file)) throw new ModelFormatException(file + ": no such tokenizer file");
        String name = file.getFileName().toString();
        if (name.endsWith(".json")) return TokenizerJson.load(file);
        if (name.endsWith(".gguf") || GGUF.looksLikeGguf(file)) {
            try (GGUF g = GGUF.open(file)) {
                return fromGguf(g.metadata(), file.toString());
            }
        }
        return fromLlama2c(file);
    }

    // ---- GGUF ----

    /** From GGUF metadata ({@code tokenizer.ggml.*}); {@code where} names the file in error messages. */
    public static Tokenizer fromGguf(Map<String, Object> md, String where) {
        if (!(md.get("tokenizer.ggml.model") instanceof String model)) throw new ModelFormatException(where + ": GGUF file has no tokenizer (tokenizer.ggml.model)");
        if (!(md.get("tokenizer.ggml.tokens") instanceof String[] tokens) || tokens.length == 0) throw new ModelFormatException(where + ": GGUF tokenizer has no tokens");
        int[] codes = md.get("tokenizer.ggml.token_type") instanceof int[] t ? t : null;
        if (codes != null && codes.length != tokens.length) throw new ModelFormatException(where + ": " + codes.length + " token types for " + tokens.length + " tokens");
        String template = md.get("tokenizer.chat_template") instanceof String s ? s : null;
        for (String k : List.of("tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id")) {
            // an id past the vocabulary would silently mean "no such token" (-1 says so on purpose)
            if (md.get(k) instanceof Number n && n.longValue() != -1 && n.longValue() != 0xFFFFFFFFL && (n.longValue() < 0 || n.longValue() >= tokens.length)) {
                throw new ModelFormatException(where + ": " + k + " " + n + " is outside the vocabulary of " + tokens.length + " tokens");
            }
        }
        Set<Integer> stops = new HashSet<>();
        for (String k : List.of("tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id")) {
            int id = intOr(md.get(k), -1);
            if (id >= 0) stops.add(id);
        }
        switch (model) {
            case "llama" -> {
                TokenType[] types = new TokenType[tokens.length];
                for (int i = 0; i < tokens.length; i++) types[i] = codes != null ? TokenType.ofCode(codes[i]) : guessSpmType(i, tokens[i]);
                float[] scores = md.get("tokenizer.ggml.scores") instanceof float[] s ? s : new float[tokens.length];
                if (scores.length != tokens.length) throw new ModelFormatException(where + ": " + scores.length + " scores for " + tokens.length + " tokens");
                boolean prefix = bool(md.get("tokenizer.ggml.add_space_prefix"), true);
                Vocabulary v = new Vocabulary(tokens, types, intOr(md.get("tokenizer.ggml.bos_token_id"), 1),
                        intOr(md.get("tokenizer.ggml.eos_token_id"), 2), stops, bool(md.get("tokenizer.ggml.add_bos_token"), true));
                return new SentencePieceBpe("llama (GGUF)", v, scores, "\u2581", prefix, false, template);
            }
            case "gpt2" -> {
                if (!(md.get("tokenizer.ggml.merges") instanceof String[] merges)) throw new ModelFormatException(where + ": GGUF BPE tokenizer has no merges");
                TokenType[] types = new TokenType[tokens.length];
                for (int i = 0; i < tokens.length; i++) types[i] = codes != null ? TokenType.ofCode(codes[i]) : TokenType.NORMAL;
                String pre = md.get("tokenizer.ggml.pre") instanceof String p ? p : "default";
                PreTokenizer p = PreTokenizer.of(pre);
                if (p == null) throw new ModelFormatException(where + ": unsupported BPE pre-tokenizer '" + pre + "' (llama-bpe, qwen2 and gpt2 are supported)");
                addNamedStops(tokens, types, stops);
                int bos = intOr(md.get("tokenizer.ggml.bos_token_id"), -1), eos = intOr(md.get("tokenizer.ggml.eos_token_id"), -1);
                Vocabulary v = new Vocabulary(tokens, types, bos, eos, stops, bool(md.get("tokenizer.ggml.add_bos_token"), p.addsBos));
                return new ByteLevelBpe(pre + " (GGUF)", v, Arrays.asList(merges), p.pattern, p.ignoreMerges, false, template);
            }
            default -> throw new ModelFormatException(where + ": unsupported tokenizer model '" + model + "' (llama and gpt2 are supported)");
        }
    }

    /** The pre-tokenizers llama.cpp names in {@code tokenizer.ggml.pre} that we implement. */
    record PreTokenizer(String pattern, boolean ignoreMerges, boolean addsBos) {
        static PreTokenizer of(String pre) {
            return switch (pre) {
                case "llama-bpe", "llama3", "llama-v3", "smaug-bpe", "falcon3" -> new PreTokenizer(ByteLevelBpe.LLAMA3_PATTERN, true, true);
                case "qwen2", "qwen3", "qwen", "deepseek-r1-qwen" -> new PreTokenizer(ByteLevelBpe.QWEN2_PATTERN, false, false);
                case "gpt2", "default", "gpt-2" -> new PreTokenizer(ByteLevelBpe.GPT2_PATTERN, false, false);
                default -> null;
            };
        }
    }

    private static TokenType guessSpmType(int id, String piece) {
        if (id == 0) return TokenType.UNKNOWN;
        if (id == 1 || id == 2) return TokenType.CONTROL;
        return SentencePieceBpe.byteValue(piece) >= 0 ? TokenType.BYTE : TokenType.NORMAL;
    }

    /** End-of-turn tokens found by name among the control tokens. */
    static void addNamedStops(String[] pieces, TokenType[] types, Set<Integer> stops) {
        for (int i = 0; i < pieces.length; i++) if (types[i] == TokenType.CONTROL && STOP_NAMES.contains(pieces[i])) stops.add(i);
    }

    static int intOr(Object o, int d) { return o instanceof Number n ? n.intValue() : d; }
    static boolean bool(Object o, boolean d) { return o instanceof Boolean b ? b : d; }

    /**
     * A tokenizer.json as GGUF tokenizer metadata (tokenizer.ggml.*), padded with unused tokens up to
     * {@code vocabSize}, so a GGUF file can carry it.
     */
    public static Map<String, Object> ggufMetadata(Path tokenizerJson, int vocabSize) {
        if (!(TokenizerJson.load(tokenizerJson) instanceof ByteLevelBpe t)) throw new ModelFormatException(tokenizerJson + ": only byte-level BPE tokenizers can be embedded");
        if (t.vocabSize() > vocabSize) throw new ModelFormatException(tokenizerJson + ": " + t.vocabSize() + " tokens do not fit a vocabulary of " + vocabSize);
        String[] tokens = new String[vocabSize];
        int[] types = new int[vocabSize];
        for (int i = 0; i < vocabSize; i++) {
            tokens[i] = i < t.vocabSize() ? t.piece(i) : "<unused" + i + ">";
            types[i] = i < t.vocabSize() ? t.vocabulary().type(i).code : TokenType.UNUSED.code;
        }
        Map<String, Object> md = new LinkedHashMap<>();
        boolean qwen = t.id("<|im_start|>") >= 0;
        md.put("tokenizer.ggml.model", "gpt2");
        md.put("tokenizer.ggml.pre", qwen ? "qwen2" : "llama-bpe");
        md.put("tokenizer.ggml.tokens", tokens);
        md.put("tokenizer.ggml.token_type", types);
        md.put("tokenizer.ggml.merges", t.merges());
        if (t.bos() >= 0) md.put("tokenizer.ggml.bos_token_id", t.bos());
        int eos = t.eos() >= 0 ? t.eos() : t.firstStop();
        if (eos >= 0) md.put("tokenizer.ggml.eos_token_id", eos);
        md.put("tokenizer.ggml.add_bos_token", t.addsBos());
        if (t.chatTemplate() != null) md.put("tokenizer.chat_template", t.chatTemplate());
        return md;
    }

    /** The chat template of the tokenizer_config.json beside a tokenizer.json, or null. */
    public static String chatTemplate(Path tokenizerJson) { return TokenizerJson.chatTemplate(TokenizerJson.readConfig(tokenizerJson)); }

    // ---- llama2.c tokenizer.bin ----

    /**
     * int32 max_token_length, then per token: float32 score, int32 length, bytes (all little-endian). Ids 0, 1, 2 are
     * unk, BOS, EOS; {@code <0xXX>} pieces are byte tokens. Encoding follows llama2.c's rules.
     */
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
                if (len < 0 || len > maxLen || len > b.remaining()) throw new ModelFormatException(file + ": corrupt llama2.c tokenizer (token " + pieces.size() + " has length " + len + ")");
                byte[] s = new byte[len];
                b.get(s);
                pieces.add(new String(s, StandardCharsets.UTF_8));
                scores.add(score);
            }
        } catch (BufferUnderflowException e) {
            throw new ModelFormatException(file + ": truncated llama2.c tokenizer (after " + pieces.size() + " tokens)");
        }
        int n = pieces.size();
        if (n < 3) throw new ModelFormatException(file + ": llama2.c tokenizer has only " + n + " tokens");
        float[] sc = new float[n];
        TokenType[] types = new TokenType[n];
        String[] ps = pieces.toArray(new String[0]);
        for (int i = 0; i < n; i++) {
            sc[i] = scores.get(i);
            types[i] = guessSpmType(i, ps[i]);
        }
        Vocabulary v = new Vocabulary(ps, types, 1, 2, Set.of(), true);
        return new SentencePieceBpe("llama2.c", v, sc, " ", true, true, null);
    }
}
