package dev.fastdms.model.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * Text to token ids and back. Implementations: {@link ByteLevelBpe} (Llama 3, Qwen) and {@link SentencePieceBpe}
 * (Llama 2, llama2.c); {@link Tokenizers} loads them.
 */
public interface Tokenizer {
    /**
     * Token ids of {@code text}; no BOS. Control-token syntax such as {@code <|eot_id|>} is encoded as plain text, but
     * user-defined added tokens (Qwen's {@code <think>}) are still recognised, as llama.cpp and HF do.
     */
    int[] encode(String text);

    /** Like {@link #encode(String)}, but control-token strings in the text (e.g. {@code <|eot_id|>}) become their ids. */
    int[] encodeWithSpecials(String text);

    /**
     * {@code text}'s ids, parsing control tokens when asked, after BOS when {@code addBos} and the model's prompts
     * start with one ({@link #addsBos()}, as llama.cpp's add_special: Qwen gets none).
     */
    default int[] encode(String text, boolean addBos, boolean parseSpecial) {
        int[] body = parseSpecial ? encodeWithSpecials(text) : encode(text);
        if (!addBos || !addsBos()) return body;
        int[] ids = new int[body.length + 1];
        ids[0] = bos();
        System.arraycopy(body, 0, ids, 1, body.length);
        return ids;
    }

    /** The token table, types and special ids. */
    Vocabulary vocabulary();

    /** The raw bytes a token stands for (empty for control tokens). */
    byte[] bytes(int id);

    /** The stored piece of a token, for display, or null for an id outside the vocabulary. */
    default String piece(int id) { return vocabulary().piece(id); }

    /** The id of a piece as stored (special tokens included), or -1. */
    default int id(String piece) { return vocabulary().id(piece); }

    default int vocabSize() { return vocabulary().size(); }

    /** Begin-of-sequence id, or -1. */
    default int bos() { return vocabulary().bos(); }

    /** End-of-sequence id, or -1. */
    default int eos() { return vocabulary().eos(); }

    /** Whether a prompt for this model starts with BOS (Llama: yes; Qwen: no). */
    default boolean addsBos() { return vocabulary().addsBos(); }

    /** Tokens that end a generation (EOS and end-of-turn tokens), ascending. */
    default int[] stopTokens() { return vocabulary().stopTokens(); }

    default boolean isStop(int id) { return vocabulary().isStop(id); }

    /** Control tokens that carry no text (BOS, EOS, chat markers, unknown, unused). */
    default boolean isSpecial(int id) { return vocabulary().type(id).carriesNoText(); }

    /** Whether encoding adds a space before the text (SentencePiece's dummy prefix), which decoding after BOS drops. */
    default boolean addsSpacePrefix() { return false; }

    /** The Jinja chat template that came with the tokenizer (GGUF or tokenizer_config.json), or null. */
    default String chatTemplate() { return null; }

    /** One line: kind, vocabulary size, BOS/EOS. */
    String describe();

    /** Decodes ids to text (UTF-8 over the concatenated bytes; control tokens produce nothing). */
    default String decode(int[] ids) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int id : ids) out.writeBytes(bytes(id));
        return new String(out.toByteArray(), StandardCharsets.UTF_8);
    }

    /** An incremental decoder for generated ids, which must not follow a BOS-prefixed prompt (see {@link #streamDecoder(boolean)}). */
    default StreamDecoder streamDecoder() { return new StreamDecoder(this, false); }

    /**
     * An incremental decoder; {@code afterBos}: the ids continue a prompt that ended with BOS, so a SentencePiece space
     * prefix on the first piece is dropped (as llama2.c prints it).
     */
    default StreamDecoder streamDecoder(boolean afterBos) { return new StreamDecoder(this, afterBos && addsSpacePrefix()); }
}
