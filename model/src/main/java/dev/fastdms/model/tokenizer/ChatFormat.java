package dev.fastdms.model.tokenizer;

import java.util.Arrays;
import java.util.Map;

/**
 * How a conversation becomes tokens, turn by turn, so a chat can prefill each new turn on top of the KV cache.
 * Llama 3 header format, ChatML (Qwen) or plain text for base models.
 */
public abstract class ChatFormat {
    protected final Tokenizer tok;

    protected ChatFormat(Tokenizer tok) { this.tok = tok; }

    public abstract String name();

    /** Tokens that open the conversation (BOS, system message). */
    public abstract int[] encodeStart(String system);

    /**
     * One user message and the prompt for the assistant's answer. {@code afterAnswer}: an assistant answer (ended by
     * its stop token, already fed) precedes this turn.
     */
    public abstract int[] encodeUserTurn(String text, boolean afterAnswer);

    /** The format for a tokenizer, from its special tokens (and a GGUF chat template when present). */
    public static ChatFormat forTokenizer(Tokenizer tok, Map<String, Object> metadata) {
        String template = metadata != null && metadata.get("tokenizer.chat_template") instanceof String s ? s : "";
        if (tok.id("<|start_header_id|>") >= 0 && tok.id("<|eot_id|>") >= 0 && !template.contains("<|im_start|>")) return new Llama3(tok);
        if (tok.id("<|im_start|>") >= 0 && tok.id("<|im_end|>") >= 0) return new ChatML(tok);
        return new Plain(tok);
    }

    static int[] concat(int[]... parts) {
        int n = 0;
        for (int[] p : parts) n += p.length;
        int[] r = new int[n];
        int o = 0;
        for (int[] p : parts) { System.arraycopy(p, 0, r, o, p.length); o += p.length; }
        return r;
    }

    /** {@code <|start_header_id|>role<|end_header_id|>\n\n content <|eot_id|>}. */
    public static final class Llama3 extends ChatFormat {
        Llama3(Tokenizer t) { super(t); }

        @Override public String name() { return "llama3"; }

        int[] header(String role) {
            return concat(new int[]{tok.id("<|start_header_id|>")}, tok.encode(role), new int[]{tok.id("<|end_header_id|>")}, tok.encode("\n\n"));
        }

        /** A whole message: header, content, end of turn. */
        public int[] message(String role, String content) {
            return concat(header(role), tok.encode(content.strip()), new int[]{tok.id("<|eot_id|>")});
        }

        @Override
        public int[] encodeStart(String system) {
            int[] bos = {tok.bos()};
            return system == null || system.isBlank() ? bos : concat(bos, message("system", system));
        }

        @Override
        public int[] encodeUserTurn(String text, boolean afterAnswer) {
            return concat(message("user", text), header("assistant"));
        }
    }

    /** {@code <|im_start|>role\n content <|im_end|>\n}. */
    public static final class ChatML extends ChatFormat {
        ChatML(Tokenizer t) { super(t); }

        @Override public String name() { return "chatml"; }

        int[] open(String role) { return concat(new int[]{tok.id("<|im_start|>")}, tok.encode(role + "\n")); }

        int[] close() { return concat(new int[]{tok.id("<|im_end|>")}, tok.encode("\n")); }

        @Override
        public int[] encodeStart(String system) {
            return system == null || system.isBlank() ? new int[0] : concat(open("system"), tok.encode(system), close());
        }

        @Override
        public int[] encodeUserTurn(String text, boolean afterAnswer) {
            // the answer's <|im_end|> was fed; ChatML puts a newline after it
            int[] nl = afterAnswer ? tok.encode("\n") : new int[0];
            return concat(nl, open("user"), tok.encode(text), close(), open("assistant"));
        }
    }

    /** Base models: the conversation is plain text the model continues. */
    public static final class Plain extends ChatFormat {
        Plain(Tokenizer t) { super(t); }

        @Override public String name() { return "plain"; }

        @Override
        public int[] encodeStart(String system) {
            int[] bos = tok.bos() >= 0 ? new int[]{tok.bos()} : new int[0];
            return system == null || system.isBlank() ? bos : concat(bos, tok.encode(system + "\n"));
        }

        @Override
        public int[] encodeUserTurn(String text, boolean afterAnswer) {
            return tok.encode(afterAnswer ? "\n" + text : text);
        }
    }

    @Override public String toString() { return name(); }
}
