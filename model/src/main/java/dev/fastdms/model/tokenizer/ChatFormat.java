package dev.fastdms.model.tokenizer;

import java.util.Arrays;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * How a conversation becomes tokens, turn by turn, so a chat can prefill each new turn on top of the KV cache:
 * {@link #encodeStart} once, then {@link #encodeUserTurn} per user message (it ends with the assistant's prompt).
 * Llama 3 header format, ChatML (Qwen) or plain text for base models.
 */
public abstract class ChatFormat {
    protected final Tokenizer tok;

    protected ChatFormat(Tokenizer tok) { this.tok = tok; }

    public abstract String name();

    /** Tokens that open the conversation (BOS where the model uses one, the system message if any). */
    public abstract int[] encodeStart(String system);

    /**
     * One user message and the prompt for the assistant's answer. {@code afterAnswer}: an assistant answer (ended by
     * its stop token, already fed) precedes this turn.
     */
    public abstract int[] encodeUserTurn(String text, boolean afterAnswer);

    /** Tokens that close an assistant answer cut short before its stop token (e.g. by a token limit). */
    public abstract int[] encodeAnswerEnd();

    /** Tokens that end the assistant's answer in this format. */
    public int[] stopTokens() { return tok.stopTokens(); }

    /** The format for a tokenizer, from its chat template or special tokens. */
    public static ChatFormat forTokenizer(Tokenizer tok) { return forTokenizer(tok, null); }

    /**
     * The format for a tokenizer: a chat template (GGUF {@code tokenizer.chat_template} in {@code metadata}, else the
     * tokenizer's own) decides when it names one of the formats and the tokenizer has its tokens; otherwise the
     * special tokens present do.
     */
    public static ChatFormat forTokenizer(Tokenizer tok, Map<String, Object> metadata) {
        String template = metadata != null && metadata.get("tokenizer.chat_template") instanceof String s ? s : tok.chatTemplate();
        boolean llama3 = has(tok, "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>");
        boolean chatml = has(tok, "<|im_start|>", "<|im_end|>");
        if (template != null) {
            if (chatml && template.contains("<|im_start|>")) return new ChatML(tok);
            if (llama3 && template.contains("<|start_header_id|>")) return new Llama3(tok);
        }
        if (llama3) return new Llama3(tok);
        if (chatml) return new ChatML(tok);
        return new Plain(tok);
    }

    private static boolean has(Tokenizer tok, String... pieces) {
        for (String p : pieces) if (tok.id(p) < 0) return false;
        return true;
    }

    static int[] concat(int[]... parts) {
        int n = 0;
        for (int[] p : parts) n += p.length;
        int[] r = new int[n];
        int o = 0;
        for (int[] p : parts) { System.arraycopy(p, 0, r, o, p.length); o += p.length; }
        return r;
    }

    private static int[] only(int... ids) { return ids; }

    /** {@code <|begin_of_text|>} then per message {@code <|start_header_id|>role<|end_header_id|>\n\n content <|eot_id|>}. */
    public static final class Llama3 extends ChatFormat {
        private final int startHeader, endHeader, eot;

        Llama3(Tokenizer t) {
            super(t);
            startHeader = t.id("<|start_header_id|>");
            endHeader = t.id("<|end_header_id|>");
            eot = t.id("<|eot_id|>");
        }

        @Override public String name() { return "llama3"; }

        /** The header that opens a message; after {@code header("assistant")} the model writes its answer. */
        public int[] header(String role) { return concat(only(startHeader), tok.encode(role), only(endHeader), tok.encode("\n\n")); }

        /** A whole message: header, content (trimmed, as the official template does), end of turn. */
        public int[] message(String role, String content) { return concat(header(role), tok.encode(content.strip()), only(eot)); }

        @Override
        public int[] encodeStart(String system) {
            int[] bos = tok.bos() >= 0 ? only(tok.bos()) : new int[0];
            return system == null || system.isBlank() ? bos : concat(bos, message("system", system));
        }

        @Override public int[] encodeUserTurn(String text, boolean afterAnswer) { return concat(message("user", text), header("assistant")); }
        @Override public int[] encodeAnswerEnd() { return only(eot); }

        @Override
        public int[] stopTokens() { return IntStream.concat(Arrays.stream(tok.stopTokens()), IntStream.of(eot)).distinct().sorted().toArray(); }
    }

    /** {@code <|im_start|>role\n content <|im_end|>\n} per message; the answer follows {@code <|im_start|>assistant\n}. */
    public static final class ChatML extends ChatFormat {
        private final int imStart, imEnd;

        ChatML(Tokenizer t) {
            super(t);
            imStart = t.id("<|im_start|>");
            imEnd = t.id("<|im_end|>");
        }

        @Override public String name() { return "chatml"; }

        int[] open(String role) { return concat(only(imStart), tok.encode(role + "\n")); }

        int[] close() { return concat(only(imEnd), tok.encode("\n")); }

        /** A whole message with its closing newline. */
        public int[] message(String role, String content) { return concat(open(role), tok.encode(content), close()); }

        @Override
        public int[] encodeStart(String system) {
            int[] bos = tok.addsBos() ? only(tok.bos()) : new int[0];
            return system == null || system.isBlank() ? bos : concat(bos, message("system", system));
        }

        @Override
        public int[] encodeUserTurn(String text, boolean afterAnswer) {
            // the answer's <|im_end|> was fed; ChatML puts a newline after it
            int[] nl = afterAnswer ? tok.encode("\n") : new int[0];
            return concat(nl, message("user", text), open("assistant"));
        }

        @Override public int[] encodeAnswerEnd() { return only(imEnd); }

        @Override
        public int[] stopTokens() { return IntStream.concat(Arrays.stream(tok.stopTokens()), IntStream.of(imEnd)).distinct().sorted().toArray(); }
    }

    /** Base models: the conversation is plain text the model continues, after BOS. */
    public static final class Plain extends ChatFormat {
        Plain(Tokenizer t) { super(t); }

        @Override public String name() { return "plain"; }

        @Override
        public int[] encodeStart(String system) {
            int[] bos = tok.bos() >= 0 ? only(tok.bos()) : new int[0];
            return system == null || system.isBlank() ? bos : concat(bos, tok.encode(system + "\n"));
        }

        @Override public int[] encodeUserTurn(String text, boolean afterAnswer) { return tok.encode(afterAnswer ? "\n" + text : text); }
        @Override public int[] encodeAnswerEnd() { return new int[0]; }
    }

    @Override public String toString() { return name(); }
}
