package dev.fastdms.model.serving;

import dev.fastdms.model.Sampler;

import java.util.function.IntPredicate;

/**
 * One generation request as the scheduler runs it: prompt ids, token limit, sampler, stop tokens, and where its
 * tokens go. {@link #cancel()} may be called from any thread (a client that went away); the scheduler then drops
 * the sequence and returns its KV memory at the next step boundary.
 */
public final class Request {
    /** Receives the request's tokens on the scheduler thread; must return quickly and never block on the engine. */
    public interface Listener {
        /** A new token; return false to finish now with {@link FinishReason#STOP} (e.g. a stop string matched). */
        boolean onToken(int id);

        /** Called exactly once, when the request leaves the scheduler for any reason. */
        void onFinish(Completion completion);
    }

    private final int[] prompt;
    private final int maxTokens;
    private final Sampler sampler;
    private final IntPredicate isStop;
    private final Listener listener;
    private volatile boolean cancelled;

    /** @param isStop stop tokens (generation ends after emitting one), or null */
    public Request(int[] prompt, int maxTokens, Sampler sampler, IntPredicate isStop, Listener listener) {
        if (prompt.length == 0) throw new IllegalArgumentException("empty prompt");
        if (maxTokens < 0) throw new IllegalArgumentException("max tokens must be >= 0");
        this.prompt = prompt.clone();
        this.maxTokens = maxTokens;
        this.sampler = sampler;
        this.isStop = isStop;
        this.listener = listener;
    }

    public int[] prompt() { return prompt; }
    public int maxTokens() { return maxTokens; }
    Sampler sampler() { return sampler; }
    boolean isStop(int id) { return isStop != null && isStop.test(id); }
    Listener listener() { return listener; }

    public void cancel() { cancelled = true; }
    public boolean cancelled() { return cancelled; }
}
