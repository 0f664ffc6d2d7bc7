package dev.fastdms.model;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.IntPredicate;
import java.util.function.Supplier;

/**
 * Continuous batching: many sequences decode together, one token each per step, so every weight matrix is read once
 * per step for all of them. A new request is prefilled on its own when it joins (between steps); a sequence leaves the
 * batch when it hits a stop token or its token limit, and a waiting request takes its place. Each sequence keeps its
 * own compacted per-head cache, so results are exactly those of running it alone.
 */
public final class BatchDecoder {
    public record Request(int id, int[] prompt, int maxNewTokens, Sampler sampler, IntPredicate isStop) {}

    public record Completion(int id, int[] promptIds, int[] ids, Generator.StopReason stopReason, Sequence sequence) {}

    private static final class Live {
        final Request req;
        final Sequence seq;
        int[] out;
        int n;
        int[] history;
        int historyLen;
        Live(Request r, Sequence s) {
            req = r; seq = s;
            out = new int[Math.max(1, r.maxNewTokens())];
            history = Arrays.copyOf(r.prompt(), r.prompt().length + Math.max(1, r.maxNewTokens()));
            historyLen = r.prompt().length;
        }
    }

    private final ForwardPass model;
    private final Supplier<Sequence> newSequence;
    private final int maxBatch;
    private final ArrayDeque<Request> waiting = new ArrayDeque<>();
    private final List<Live> live = new ArrayList<>();
    private final float[] logits;
    private long decodeSteps, decodedTokens, prefillTokens;
    private double decodeSeconds, prefillSeconds;

    public BatchDecoder(ForwardPass model, Supplier<Sequence> newSequence, int maxBatch) {
        if (maxBatch < 1 || maxBatch > model.maxRows()) {
            throw new IllegalArgumentException("batch size must be in 1.." + model.maxRows() + ", got " + maxBatch);
        }
        this.model = model;
        this.newSequence = newSequence;
        this.maxBatch = maxBatch;
        this.logits = new float[maxBatch * model.config().vocabSize()];
    }

    public void submit(Request r) {
        if (r.prompt().length == 0) throw new IllegalArgumentException("empty prompt");
        if (r.prompt().length > model.config().contextLength()) {
            throw new ContextOverflowException("context overflow: prompt of " + r.prompt().length + " tokens, context " + model.config().contextLength());
        }
        waiting.add(r);
    }

    public int active() { return live.size(); }
    public boolean idle() { return live.isEmpty() && waiting.isEmpty(); }
    public long decodedTokens() { return decodedTokens; }
    public double decodeSeconds() { return decodeSeconds; }
    public long prefillTokens() { return prefillTokens; }
    public double prefillSeconds() { return prefillSeconds; }

    /** Admits waiting requests into free batch places, then advances every live sequence by one token. */
    public List<Completion> step() {
        List<Completion> done = new ArrayList<>();
        int vocab = model.config().vocabSize();
        while (live.size() < maxBatch && !waiting.isEmpty()) {
            Request r = waiting.poll();
            Live l = new Live(r, newSequence.get());
            long t0 = System.nanoTime();
            model.forward(l.seq, r.prompt(), 0, r.prompt().length, logits, false);
            prefillSeconds += (System.nanoTime() - t0) / 1e9;
            prefillTokens += r.prompt().length;
            if (!accept(l, logits, 0, done)) live.add(l);
        }
        if (live.isEmpty()) return done;
        int n = live.size();
        Sequence[] seqs = new Sequence[n];
        int[] toks = new int[n];
        for (int i = 0; i < n; i++) {
            Live l = live.get(i);
            seqs[i] = l.seq;
            toks[i] = l.out[l.n - 1];
        }
        long t0 = System.nanoTime();
        model.forwardRows(seqs, toks, n, logits, 0, true);
        decodeSeconds += (System.nanoTime() - t0) / 1e9;
        decodeSteps++;
        decodedTokens += n;
        List<Live> still = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            Live l = live.get(i);
            if (!accept(l, logits, i * vocab, done)) still.add(l);
        }
        live.clear();
        live.addAll(still);
        return done;
    }

    /** Runs until every submitted request has completed; completions in finishing order. */
    public List<Completion> runAll() {
        List<Completion> all = new ArrayList<>();
        while (!idle()) all.addAll(step());
        return all;
    }

    /** Samples the next token of {@code l} from logits at {@code off}; returns true (and records it) when it finished. */
    private boolean accept(Live l, float[] lg, int off, List<Completion> done) {
        Request r = l.req;
        if (r.maxNewTokens() == 0) return finish(l, Generator.StopReason.MAX_TOKENS, done);
        int vocab = model.config().vocabSize();
        float[] row = off == 0 ? lg : Arrays.copyOfRange(lg, off, off + vocab);
        int next = r.sampler().sample(row, vocab, l.history, l.historyLen);
        l.out[l.n++] = next;
        l.history[l.historyLen++] = next;
        if (r.isStop() != null && r.isStop().test(next)) return finish(l, Generator.StopReason.STOP_TOKEN, done);
        if (l.n >= r.maxNewTokens()) return finish(l, Generator.StopReason.MAX_TOKENS, done);
        if (l.seq.position() >= model.config().contextLength()) return finish(l, Generator.StopReason.CONTEXT_FULL, done);
        return false;
    }

    private boolean finish(Live l, Generator.StopReason reason, List<Completion> done) {
        done.add(new Completion(l.req.id(), l.req.prompt(), Arrays.copyOf(l.out, l.n), reason, l.seq));
        return true;
    }
}
