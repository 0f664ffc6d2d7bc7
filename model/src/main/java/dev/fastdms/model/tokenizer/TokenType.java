package dev.fastdms.model.tokenizer;

/** What a vocabulary entry is; the codes are GGUF's {@code tokenizer.ggml.token_type} values. */
public enum TokenType {
    UNDEFINED(0), NORMAL(1), UNKNOWN(2), CONTROL(3), USER_DEFINED(4), UNUSED(5), BYTE(6);

    public final int code;

    TokenType(int code) { this.code = code; }

    public static TokenType ofCode(int code) {
        for (TokenType t : values()) if (t.code == code) return t;
        return UNDEFINED;
    }

    /** Control, unknown and unused tokens stand for no text: decoding skips them. */
    public boolean carriesNoText() { return this == CONTROL || this == UNKNOWN || this == UNUSED; }
}
