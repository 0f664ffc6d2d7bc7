package dev.fastdms.model;

import java.util.Arrays;
import java.util.function.IntPredicate;

/**
 * Prompt in, tokens out: prefills the prompt on top of whatever the sequence already holds (a chat's earlier turns
 * stay in the cache), then decodes one token at a time until a stop token, the token limit or the context end.
 */
public final class Generator {
    /** Receives each generated token as soon as it is sampled. */
    @FunctionalInterface
    public interface TokenSink { void accept(int token); }

    /** CANCELLED: the caller's cancel flag was raised (a chat user pressed Ctrl-C). */
    public enum StopReason { STOP_TOKEN, MAX_TOKENS, CONTEXT_FULL, CANCELLED }

    /**
     * @param promptIds      the prompt as fed (on top of the earlier context)
     * @param ids            the generated ids, the stop token included when one ended generation
     * @param prefillSeconds time spent on the prompt; decodeSeconds on the generated tokens after the first
     */
    public record Result(int[] promptIds, int[] ids, StopReason stopReason, double prefillSeconds, double decodeSeconds) {
        public double prefillTokensPerSecond() { return prefillSeconds > 0 ? promptIds.length / prefillSeconds : 0; }

        /** Decode speed: tokens produced by single-token forward passes over the time they took. */
        public double decodeTokensPerSecond() { return decodeSeconds > 0 ? Math.max(0, ids.length - 1) / decodeSeconds : 0; }
    }

    private final ForwardPass model;

    public Generator(ForwardPass model) { this.model = model; }

    public Result generate(Sequence seq, int[] prompt, int maxNewTokens, Sampler sampler, IntPredicate isStop, TokenSink sink) {
        return generate(seq, prompt, maxNewTokens, sampler, isStop, sink, ProgressListener.NONE);
    }

    public Result generate(Sequence seq, int[] prompt, int maxNewTokens, Sampler sampler, IntPredicate isStop, TokenSink sink,
                           ProgressListener prefillProgress) {
        return generate(seq, prompt, maxNewTokens, sampler, isStop, sink, prefillProgress, () -> false);
    }

    /** As above; {@code cancelled} is polled before each decode step and ends generation (the cache stays usable). */
    public Result generate(Sequence seq, int[] prompt, int maxNewTokens, Sampler sampler, IntPredicate isStop, TokenSink sink,
                           ProgressListener prefillProgress, java.util.function.BooleanSupplier cancelled) {
        int ctx = model.config().contextLength();
        if (prompt.length == 0) throw new IllegalArgumentException("empty prompt");
        if (seq.position() + prompt.length > ctx) {
            throw new ContextOverflowException("context overflow: the prompt needs " + (seq.position() + prompt.length)
                    + " positions but the context is " + ctx + " (raise --ctx or shorten the prompt)");
        }
        int vocab = model.config().vocabSize();
        float[] logits = new float[vocab];
        // buffers for what the context allows, not for -n: every generated token but the last takes a position
        int room = Math.min(Math.max(0, maxNewTokens), ctx - seq.position() - prompt.length + 1);
        int[] history = Arrays.copyOf(prompt, prompt.length + room);
        int historyLen = prompt.length;
        long t0 = System.nanoTime();
        prefillProgress.start("prefill", prompt.length);
        // Greedy on a device backend: the device picks the token, only its id comes back.
        boolean onDevice = sampler.isPlainArgmax() && !"jvm".equals(model.backend());
        int picked = onDevice ? model.forwardArgmax(seq, prompt, 0, prompt.length) : -1;
        if (picked < 0) model.forward(seq, prompt, 0, prompt.length, logits, false, prefillProgress);
        else prefillProgress.advance(prompt.length);
        prefillProgress.end();
        long t1 = System.nanoTime();
        int[] out = new int[room];
        int n = 0;
        StopReason reason = StopReason.MAX_TOKENS;
        int[] one = new int[1];
        while (n < maxNewTokens) {
            int next = picked >= 0 ? picked : sampler.sample(logits, vocab, history, historyLen);
            out[n++] = next;
            history[historyLen++] = next;
            if (sink != null) sink.accept(next);
            if (isStop != null && isStop.test(next)) { reason = StopReason.STOP_TOKEN; break; }
            if (n == maxNewTokens) break;
            if (seq.position() >= ctx) { reason = StopReason.CONTEXT_FULL; break; }
            if (cancelled.getAsBoolean()) { reason = StopReason.CANCELLED; break; }
            one[0] = next;
            picked = onDevice ? model.forwardArgmax(seq, one, 0, 1) : -1;
            if (picked < 0) model.forward(seq, one, 0, 1, logits, false);
        }
        long t2 = System.nanoTime();
        return new Result(prompt.clone(), Arrays.copyOf(out, n), reason, (t1 - t0) / 1e9, (t2 - t1) / 1e9);
    }
}
