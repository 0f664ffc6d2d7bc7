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
        reset();
    }

    /** Forgets the conversation (a new, empty cache). */
    public void reset() {
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
        int[] prompt = turnTokens(user);
        Generator.Result r = engine.generate(seq, prompt, maxTokens, settings, sink, ProgressListener.NONE);
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
