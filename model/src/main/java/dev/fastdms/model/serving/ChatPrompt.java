package dev.fastdms.model.serving;

import dev.fastdms.model.Engine;
import dev.fastdms.model.tokenizer.ChatFormat;

import java.util.Arrays;
import java.util.List;

/**
 * A conversation (OpenAI-style messages) in the model's chat format, as {@code chat} feeds it turn by turn: the
 * start (with the system messages), each user turn with the assistant's prompt, each earlier answer closed by the
 * format's end-of-answer tokens. A conversation ending with a user message ends with the assistant's prompt.
 */
public final class ChatPrompt {
    public record Message(String role, String content) {}

    private ChatPrompt() {}

    public static int[] encode(Engine engine, List<Message> messages) {
        ChatFormat f = engine.chatFormat();
        if (f == null) throw new IllegalArgumentException("this model has no tokenizer, so it cannot chat");
        StringBuilder system = new StringBuilder();
        for (Message m : messages) {
            if (m.role().equals("system") || m.role().equals("developer")) {
                if (!system.isEmpty()) system.append('\n');
                system.append(m.content());
            }
        }
        int[] ids = f.encodeStart(system.isEmpty() ? null : system.toString());
        boolean afterAnswer = false, answerOpen = false;
        for (Message m : messages) {
            switch (m.role()) {
                case "system", "developer" -> { }
                case "user" -> {
                    ids = concat(ids, f.encodeUserTurn(m.content(), afterAnswer));
                    answerOpen = true;
                }
                case "assistant" -> {
                    // an answer with no user turn before it still needs the assistant's prompt: open one empty turn
                    if (!answerOpen) ids = concat(ids, f.encodeUserTurn("", afterAnswer));
                    ids = concat(ids, engine.tokenizer().encode(m.content()), f.encodeAnswerEnd());
                    afterAnswer = true;
                    answerOpen = false;
                }
                default -> throw new IllegalArgumentException("unknown message role '" + m.role() + "' (system, developer, user, assistant)");
            }
        }
        return ids;
    }

    private static int[] concat(int[]... parts) {
        int[] r = new int[0];
        for (int[] p : parts) {
            int o = r.length;
            r = Arrays.copyOf(r, o + p.length);
            System.arraycopy(p, 0, r, o, p.length);
        }
        return r;
    }
}
