package dev.fastdms.model.format;

/**
 * A model, tokenizer or config file that cannot be used: the message is one line a user can act on. Names quoted from
 * a corrupt file may hold control characters or be huge, so the message is made printable and kept short here.
 */
public class ModelFormatException extends RuntimeException {
    private static final int MAX_MESSAGE = 2000;

    public ModelFormatException(String message) { super(oneLine(message)); }
    public ModelFormatException(String message, Throwable cause) { super(oneLine(message), cause); }

    static String oneLine(String m) {
        if (m == null) return null;
        StringBuilder b = new StringBuilder(Math.min(m.length(), MAX_MESSAGE + 16));
        for (int i = 0; i < m.length() && b.length() < MAX_MESSAGE; i++) {
            char c = m.charAt(i);
            if (c < 0x20 || c == 0x7f || c == '\u2028' || c == '\u2029') b.append(String.format("\\x%02x", (int) c & 0xff));
            else b.append(c);
        }
        if (b.length() >= MAX_MESSAGE) b.append("…");
        return b.toString();
    }
}
