package dev.fastdms.model;

import dev.fastdms.model.tokenizer.ChatFormat;

import java.util.Arrays;

/**
 * A conversation kept in one sequence's KV cache: each turn prefills only the new tokens (the user message in the
 * model's chat format) on top of the cache, never the whole history again.
 */
public final class ChatSession {
    private final Engine engine;
    private final String system;
    private Sequence seq;
    private int unfed = -1; // the last generated token, sampled but not yet run through the model
    private int turns;
    private boolean answerOpen; // the last answer stopped at the token limit: its end-of-answer tokens were never fed

    public ChatSession(Engine engine, String system) {
        this.engine = engine;
        this.system = system;
        ChatFormat f = engine.chatFormat();
        int ctx = engine.config().contextLength();
        // refused now rather than at the first message: no turn could ever fit
        if (f != null && f.encodeStart(system).length >= ctx) {
            throw new ContextOverflowException("the system prompt takes " + f.encodeStart(system).length + " tokens; the context is "
                    + ctx + " (shorten --system or raise --ctx)");
        }
        reset();
    }

    /** Forgets the conversation: the old cache is released (its budget bytes, a device's sequence slot) for a new one. */
    public void reset() {
        if (seq != null) seq.kv().release();
        seq = null; // if the new sequence cannot be made, no released one stays in use
        seq = engine.newSequence();
        unfed = -1;
        turns = 0;
        answerOpen = false;
    }

    public Sequence sequence() { return seq; }
    public int turns() { return turns; }

    /** Tokens the next turn will feed for this user message (the format's start on the first turn). */
    int[] turnTokens(String user) {
        ChatFormat f = engine.chatFormat();
        if (f == null) throw new IllegalArgumentException("this model has no tokenizer, so it cannot chat");
        int[] body = turns == 0 ? concat(f.encodeStart(system), f.encodeUserTurn(user, false)) : f.encodeUserTurn(user, true);
        int[] lead = unfed >= 0 ? new int[]{unfed} : new int[0];
        // an answer cut off by the token limit is closed before the next user message, so the cache holds a
        // well-formed conversation (a stop token, when one ended the answer, is the unfed token itself)
        if (answerOpen) lead = concat(lead, f.encodeAnswerEnd());
        return concat(lead, body);
    }

    public Generator.Result turn(String user, int maxTokens, Sampler.Settings settings, Generator.TokenSink sink) {
        return turn(user, maxTokens, settings, sink, () -> false);
    }

    /**
     * One exchange; {@code cancelled} ends the answer early (Ctrl-C), keeping what was said so far. A failure inside
     * the forward pass (e.g. the KV budget) leaves the cache half-written: then only {@link #reset()} helps.
     */
    public Generator.Result turn(String user, int maxTokens, Sampler.Settings settings, Generator.TokenSink sink,
                                 java.util.function.BooleanSupplier cancelled) {
        int[] prompt = turnTokens(user);
        Generator.Result r = engine.generate(seq, prompt, maxTokens, settings, sink, ProgressListener.NONE, cancelled);
        unfed = r.ids().length > 0 ? r.ids()[r.ids().length - 1] : -1;
        answerOpen = r.stopReason() != Generator.StopReason.STOP_TOKEN;
        turns++;
        return r;
    }

    private static int[] concat(int[] a, int[] b) {
        int[] r = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }
}
