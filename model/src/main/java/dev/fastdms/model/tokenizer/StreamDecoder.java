package dev.fastdms.model.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Turns ids into text as they are generated. A character may be split over several byte tokens, so bytes are held
 * back until they form complete UTF-8 characters; control tokens produce no text.
 */
public final class StreamDecoder {
    private final Tokenizer tok;
    private byte[] pending = new byte[16];
    private int n;
    private boolean dropLeadingSpace;

    StreamDecoder(Tokenizer tok, boolean dropLeadingSpace) {
        this.tok = tok;
        this.dropLeadingSpace = dropLeadingSpace;
    }

    /** The text that became complete with this id (often empty while a character is incomplete). */
    public String next(int id) {
        if (tok.isSpecial(id)) return "";
        byte[] b = tok.bytes(id);
        int from = 0;
        if (dropLeadingSpace && b.length > 0) {
            dropLeadingSpace = false;
            if (b[0] == ' ') from = 1;
        }
        if (n + b.length > pending.length) pending = Arrays.copyOf(pending, Math.max(2 * pending.length, n + b.length));
        System.arraycopy(b, from, pending, n, b.length - from);
        n += b.length - from;
        int complete = completePrefix(pending, n);
        String s = new String(pending, 0, complete, StandardCharsets.UTF_8);
        System.arraycopy(pending, complete, pending, 0, n - complete);
        n -= complete;
        return s;
    }

    /** Whatever is held back (an incomplete character at the very end becomes U+FFFD). */
    public String flush() {
        String s = new String(pending, 0, n, StandardCharsets.UTF_8);
        n = 0;
        return s;
    }

    /** Bytes held back because they do not yet form a whole character. */
    public int pendingBytes() { return n; }

    /**
     * Length of the longest prefix that does not end inside a UTF-8 sequence which later bytes could still complete.
     * Malformed bytes are released at once (they decode to U+FFFD) instead of being held forever.
     */
    static int completePrefix(byte[] b, int n) {
        int lead = n - 1, continuation = 0;
        while (lead >= 0 && continuation < 3 && (b[lead] & 0xC0) == 0x80) { lead--; continuation++; }
        if (lead < 0) return n;
        int v = b[lead] & 0xFF;
        int need = v >= 0xF0 && v <= 0xF4 ? 4 : v >= 0xE0 && v < 0xF0 ? 3 : v >= 0xC2 && v < 0xE0 ? 2 : 1;
        return need > 1 && continuation + 1 < need ? lead : n;
    }
}
