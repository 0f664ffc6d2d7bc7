package dev.fastdms.model.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/** Text to token ids and back. */
public interface Tokenizer {
    /** Token ids of {@code text}; no BOS; special-token text is treated as plain text. */
    int[] encode(String text);

    /** Like {@link #encode(String)}, but special-token strings in the text (e.g. {@code <|eot_id|>}) become their ids. */
    int[] encodeWithSpecials(String text);

    /** The raw bytes a token stands for (empty for control tokens). */
    byte[] bytes(int id);

    /** The stored piece of a token, for display. */
    String piece(int id);

    /** The id of a piece (special tokens included), or -1. */
    int id(String piece);

    int vocabSize();

    int bos();

    /** Tokens that end a generation (EOS, end-of-turn). */
    boolean isStop(int id);

    /** Control tokens that carry no text. */
    boolean isSpecial(int id);

    /** Whether encoding adds a space before the text (SentencePiece's dummy prefix), which decoding after BOS drops. */
    default boolean addsSpacePrefix() { return false; }

    /** One line: kind, vocabulary size, BOS/EOS. */
    String describe();

    /** Decodes ids to text (UTF-8 over the concatenated bytes; control tokens produce nothing). */
    default String decode(int[] ids) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int id : ids) out.writeBytes(bytes(id));
        return new String(out.toByteArray(), StandardCharsets.UTF_8);
    }
}
