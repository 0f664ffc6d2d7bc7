package dev.fastdms.model.serving;

import dev.fastdms.model.ContextOverflowException;
import dev.fastdms.model.Engine;
import dev.fastdms.model.ForwardPass;
import dev.fastdms.model.JvmSequence;
import dev.fastdms.model.RandomFill;
import dev.fastdms.model.Sequence;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Continuous batching: one thread owns the engine. Each iteration drops cancelled requests, admits waiting ones
 * while their KV fits ({@link KvLedger}), decodes one token for every running sequence in one batched step (every
 * weight read once for all of them), then feeds one prefill chunk of the oldest sequence still reading its prompt,
 * so a long prompt delays running streams by one chunk at a time, not by its whole length.
 *
 * <p>Memory: before each step the most bytes it can add are checked against the limit; when they do not fit, the
 * most recently admitted sequence is preempted: its KV is freed and its request goes back to the front of the
 * queue, keeping the tokens generated so far, and is recomputed (prompt and those tokens prefilled again) when it
 * is admitted again (not before the memory it held is free). A sequence that does not fit even alone finishes
 * with {@link FinishReason#KV_BUDGET}. So no step ever fails half-way for memory and no request takes another's.
 *
 * <p>Decode rows and prefill chunks run as separate forward steps, each like {@code generate}'s own (chunks of
 * {@link Engine#MAX_ROWS} from the start of the prompt), so a request's greedy tokens are those it gets alone as
 * long as the decode batch stays below the outer-product kernel's batch size (16 rows), whose sums run in another
 * order.
 */
public final class Scheduler implements AutoCloseable {
    /**
     * @param maxSeqs            sequences decoding together (at most the backend's rows per step)
     * @param maxQueue           requests waiting for admission before {@link #submit} refuses more
     * @param prefillChunk       prompt tokens fed per iteration
     * @param forcedEvictFraction benchmarking only (synthetic models): DMS flags this fraction of tokens, as
     *                            {@code bench --dms-evict-fraction}; negative: the model decides
     * @param randomFill         benchmarking only: prompts fill the cache with random keys and values instead of
     *                           running the model (as {@code bench --fill random}), except their last token
     */
    public record Options(int maxSeqs, int maxQueue, int prefillChunk, double forcedEvictFraction, boolean randomFill) {
        public Options {
            if (maxSeqs < 1) throw new IllegalArgumentException("max sequences must be >= 1");
            if (maxQueue < 0) throw new IllegalArgumentException("max queue must be >= 0");
            if (prefillChunk < 1) throw new IllegalArgumentException("prefill chunk must be >= 1");
        }

        public static Options of(int maxSeqs, int maxQueue) { return new Options(maxSeqs, maxQueue, Engine.MAX_ROWS, -1, false); }
    }

    /** A request with its place in the engine: the prompt and the tokens generated so far, and how much is fed. */
    private static final class Entry {
        final Request req;
        final long arrival;
        final int[] context;   // prompt, then generated tokens
        int len;
        Sequence seq;          // null while waiting
        int fed;               // context tokens the sequence has consumed
        long admitted;         // admission order: the newest is preempted first
        int preemptions;
        long heldWhenPreempted;

        Entry(Request r, long arrival) {
            req = r;
            this.arrival = arrival;
            context = Arrays.copyOf(r.prompt(), r.prompt().length + r.maxTokens());
            len = r.prompt().length;
        }

        int generated() { return len - req.prompt().length; }
    }

    private final Engine engine;
    private final ForwardPass model;
    private final Options opts;
    private final KvLedger ledger;
    private final int vocab, ctxLen;
    private final float[] logits, row;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition work = lock.newCondition();
    private final ArrayDeque<Entry> waiting = new ArrayDeque<>(); // guarded by lock
    private final List<Entry> running = new ArrayList<>();       // scheduler thread only
    private final Thread thread;
    private long arrivals, admissions;                            // arrivals guarded by lock
    private volatile boolean accepting = true;
    private volatile long drainDeadline = Long.MAX_VALUE;       // nanoTime after which running requests are cancelled
    private volatile boolean stopped;
    // statistics, written by the scheduler thread
    private volatile int runningCount;
    private volatile long runningKvBytes;
    private volatile double compressionRatio = 1.0;
    private final AtomicLong generatedTokens = new AtomicLong(), promptTokens = new AtomicLong(), preemptionCount = new AtomicLong(),
            finishedCount = new AtomicLong(), decodeTokens = new AtomicLong(), decodeNanos = new AtomicLong();
    private final long[] recentRows = new long[32], recentNanos = new long[32];
    private int recent;
    private volatile double recentDecodeTps;
    private volatile int maxDecodeBatch;

    public Scheduler(Engine engine, Options opts) {
        this.engine = engine;
        this.model = engine.forward();
        if (opts.maxSeqs() > model.maxRows()) {
            throw new IllegalArgumentException("at most " + model.maxRows() + " sequences decode together on the " + model.backend() + " backend");
        }
        if (opts.forcedEvictFraction() >= 0 && engine.kvSettings().dms() == null) {
            throw new IllegalArgumentException("a forced eviction fraction needs DMS");
        }
        this.opts = new Options(opts.maxSeqs(), opts.maxQueue(), Math.min(opts.prefillChunk(), model.maxRows()),
                opts.forcedEvictFraction(), opts.randomFill());
        this.ledger = new KvLedger(engine.kvSettings().budget());
        this.vocab = model.config().vocabSize();
        this.ctxLen = model.config().contextLength();
        this.logits = new float[model.maxRows() * vocab];
        this.row = new float[vocab];
        this.thread = Thread.ofPlatform().name("fastdms-scheduler").daemon().unstarted(this::loop);
    }

    public Scheduler start() {
        thread.start();
        return this;
    }

    /**
     * Queues a request. Throws {@link ContextOverflowException} when the prompt leaves no room to generate, and
     * {@link RejectedException} when the queue is full or the scheduler is shutting down.
     */
    public void submit(Request r) {
        if (r.prompt().length >= ctxLen) {
            throw new ContextOverflowException("the prompt has " + r.prompt().length + " tokens; the context is " + ctxLen
                    + " and must leave room for at least one generated token");
        }
        lock.lock();
        try {
            if (!accepting) throw new RejectedException(RejectedException.Why.SHUTTING_DOWN, "the server is shutting down");
            if (waiting.size() >= opts.maxQueue()) {
                throw new RejectedException(RejectedException.Why.QUEUE_FULL, "the queue is full (" + opts.maxQueue() + " requests waiting)");
            }
            waiting.addLast(new Entry(r, arrivals++));
            work.signal();
        } finally {
            lock.unlock();
        }
    }

    /** Wakes the scheduler (a request was cancelled: its memory is returned at once, not at its next token). */
    public void wake() {
        lock.lock();
        try { work.signal(); } finally { lock.unlock(); }
    }

    public SchedulerStats stats() {
        int w;
        lock.lock();
        try { w = waiting.size(); } finally { lock.unlock(); }
        long held = ledger.limit() > 0 ? engine.kvSettings().budget().used() : runningKvBytes;
        return new SchedulerStats(runningCount, w, held, ledger.limit(), compressionRatio, recentDecodeTps, generatedTokens.get(),
                promptTokens.get(), decodeTokens.get(), decodeNanos.get() / 1e9, preemptionCount.get(), finishedCount.get(), maxDecodeBatch);
    }

    public Options options() { return opts; }

    /**
     * Stops taking requests, cancels those still waiting, lets running ones finish for up to {@code grace}, then
     * cancels the rest; returns when the scheduler thread has ended (the engine is then free).
     */
    public void shutdown(Duration grace) {
        lock.lock();
        try {
            accepting = false;
            drainDeadline = System.nanoTime() + grace.toNanos();
            work.signal();
        } finally {
            lock.unlock();
        }
        try {
            thread.join(grace.toMillis() + 60_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() { shutdown(Duration.ZERO); }

    public boolean accepting() { return accepting; }

    private void loop() {
        try {
            while (true) {
                lock.lock();
                try {
                    while (running.isEmpty() && waiting.isEmpty() && accepting) work.await(1, TimeUnit.SECONDS);
                    if (!accepting) {
                        for (Entry e : waiting) finish(e, FinishReason.CANCELLED, "the server is shutting down");
                        waiting.clear();
                        if (running.isEmpty()) break;
                    }
                } finally {
                    lock.unlock();
                }
                if (System.nanoTime() > drainDeadline) {
                    for (Entry e : new ArrayList<>(running)) drop(e, FinishReason.CANCELLED, "the server is shutting down");
                    continue;
                }
                dropCancelled();
                admit();
                decodeStep();
                prefillStep();
                publish();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            for (Entry e : new ArrayList<>(running)) drop(e, FinishReason.CANCELLED, "the server is shutting down");
            publish();
            stopped = true;
        }
    }

    private void dropCancelled() {
        for (Entry e : new ArrayList<>(running)) if (e.req.cancelled()) drop(e, FinishReason.CANCELLED, null);
        List<Entry> gone = new ArrayList<>();
        lock.lock();
        try {
            for (Iterator<Entry> it = waiting.iterator(); it.hasNext(); ) {
                Entry e = it.next();
                if (e.req.cancelled()) { it.remove(); gone.add(e); }
            }
        } finally {
            lock.unlock();
        }
        for (Entry e : gone) finish(e, FinishReason.CANCELLED, null);
    }

    /**
     * Admits waiting requests in order while there is a place and their first step fits in memory together with the
     * next decode step of those running; a preempted request also waits until the memory it held is free again.
     */
    private void admit() {
        while (running.size() < opts.maxSeqs()) {
            Entry e;
            lock.lock();
            try { e = waiting.peekFirst(); } finally { lock.unlock(); }
            if (e == null) return;
            if (e.req.maxTokens() == 0) {
                lock.lock();
                try { waiting.pollFirst(); } finally { lock.unlock(); }
                finish(e, FinishReason.LENGTH, null);
                continue;
            }
            Sequence s = engine.newSequence();
            if (opts.forcedEvictFraction() >= 0) s.forceEvictFraction(opts.forcedEvictFraction());
            long need = ledger.growthBound(s, firstStepTokens(e, s)) + e.heldWhenPreempted;
            for (Entry r : running) need += ledger.growthBound(r.seq, 1);
            if (!running.isEmpty() && !ledger.fits(need)) {
                s.kv().release();
                return;
            }
            lock.lock();
            try { waiting.pollFirst(); } finally { lock.unlock(); }
            e.seq = s;
            e.fed = 0;
            e.admitted = admissions++;
            if (e.preemptions == 0) promptTokens.addAndGet(e.req.prompt().length);
            running.add(e);
            runningCount = running.size();
        }
    }

    private int firstStepTokens(Entry e, Sequence s) {
        return s.policy() != null ? e.len : Math.min(e.len, opts.prefillChunk());
    }

    /** One token for every sequence whose context is fed up to its last sampled token, all in one step. */
    private void decodeStep() {
        List<Entry> rows = new ArrayList<>();
        for (Entry e : running) if (e.len - e.fed == 1) rows.add(e);
        rows = makeRoom(rows, 1);
        if (rows.isEmpty()) return;
        int n = rows.size();
        Sequence[] seqs = new Sequence[n];
        int[] toks = new int[n];
        for (int i = 0; i < n; i++) {
            Entry e = rows.get(i);
            seqs[i] = e.seq;
            toks[i] = e.context[e.len - 1];
        }
        long t0 = System.nanoTime();
        try {
            model.forwardRows(seqs, toks, n, logits, 0, true);
        } catch (RuntimeException ex) {
            for (Entry e : rows) drop(e, FinishReason.ERROR, "the decode step failed: " + ex.getMessage());
            return;
        }
        long dt = System.nanoTime() - t0;
        decodeTokens.addAndGet(n);
        maxDecodeBatch = Math.max(maxDecodeBatch, n);
        decodeNanos.addAndGet(dt);
        recentRows[recent % recentRows.length] = n;
        recentNanos[recent % recentNanos.length] = dt;
        recent++;
        for (int i = 0; i < n; i++) {
            Entry e = rows.get(i);
            e.fed++;
            System.arraycopy(logits, i * vocab, row, 0, vocab);
            accept(e);
        }
    }

    /** Random fills (benchmarking) cost no forward pass, so an iteration fills up to this many chunks. */
    private static final int RANDOM_FILL_CHUNKS = 256;

    /**
     * One chunk of the oldest sequence still reading its prompt (the whole rest under a training-free policy); with
     * {@code randomFill}, up to {@link #RANDOM_FILL_CHUNKS} chunks, each checked against the budget like a real one.
     */
    private void prefillStep() {
        for (int i = 0; i < (opts.randomFill() ? RANDOM_FILL_CHUNKS : 1); i++) if (!prefillChunk()) return;
    }

    /** Feeds one prefill chunk; false when no sequence is reading its prompt. */
    private boolean prefillChunk() {
        Entry e = null;
        for (Entry r : running) {
            int target = opts.randomFill() ? r.len - 1 : r.len;
            if (target - r.fed >= (opts.randomFill() ? 1 : 2) && (e == null || r.admitted < e.admitted)) e = r;
        }
        if (e == null) return false;
        int target = opts.randomFill() ? e.len - 1 : e.len;
        int chunk = e.seq.policy() != null ? target - e.fed : Math.min(opts.prefillChunk(), target - e.fed);
        if (makeRoom(new ArrayList<>(List.of(e)), chunk).isEmpty()) return true;
        boolean last = e.fed + chunk == e.len;
        try {
            if (opts.randomFill()) RandomFill.fill(JvmSequence.of(e.seq), chunk, e.arrival * 1_000_003L + e.fed);
            else model.forward(e.seq, e.context, e.fed, chunk, last ? row : null, false);
        } catch (RuntimeException ex) {
            drop(e, FinishReason.ERROR, "the prefill step failed: " + ex.getMessage());
            return true;
        }
        e.fed += chunk;
        if (last) accept(e);
        return true;
    }

    /**
     * Preempts the most recently admitted sequences until {@code tokens} more tokens for each of {@code step} fit in
     * memory; returns the entries of {@code step} still running.
     */
    private List<Entry> makeRoom(List<Entry> step, int tokens) {
        while (!step.isEmpty()) {
            long need = 0;
            for (Entry e : step) need += ledger.growthBound(e.seq, tokens);
            if (ledger.fits(need)) return step;
            Entry victim = running.getFirst();
            for (Entry r : running) if (r.admitted > victim.admitted) victim = r;
            if (running.size() == 1) {
                drop(victim, FinishReason.KV_BUDGET, "stopped early: this sequence's KV cache does not fit in the KV budget ("
                        + ledger.limit() + " bytes) even alone");
            } else {
                preempt(victim);
            }
            step.remove(victim);
        }
        return step;
    }

    /** Frees the sequence's KV and puts its request back at the front of the queue; it is recomputed on readmission. */
    private void preempt(Entry e) {
        e.heldWhenPreempted = e.seq.kv().bytesAllocated();
        e.seq.kv().release();
        e.seq = null;
        e.fed = 0;
        e.preemptions++;
        preemptionCount.incrementAndGet();
        running.remove(e);
        runningCount = running.size();
        lock.lock();
        try { waiting.addFirst(e); } finally { lock.unlock(); }
    }

    /** Samples the next token of {@code e} from {@link #row} and decides whether it goes on. */
    private void accept(Entry e) {
        int next = e.req.sampler().sample(row, vocab, e.context, e.len);
        e.context[e.len++] = next;
        generatedTokens.incrementAndGet();
        boolean more;
        try {
            more = e.req.listener().onToken(next);
        } catch (RuntimeException ex) {
            drop(e, FinishReason.CANCELLED, "the client failed to take a token: " + ex.getMessage());
            return;
        }
        if (e.req.isStop(next) || !more) drop(e, FinishReason.STOP, null);
        else if (e.generated() >= e.req.maxTokens()) drop(e, FinishReason.LENGTH, null);
        else if (e.fed >= ctxLen) drop(e, FinishReason.LENGTH, "the context of " + ctxLen + " tokens is full");
    }

    /** Releases a running sequence's KV and finishes its request. */
    private void drop(Entry e, FinishReason reason, String note) {
        if (e.seq != null) e.seq.kv().release();
        e.seq = null;
        running.remove(e);
        runningCount = running.size();
        finish(e, reason, note);
    }

    private void finish(Entry e, FinishReason reason, String note) {
        finishedCount.incrementAndGet();
        try {
            e.req.listener().onFinish(new Completion(reason, e.req.prompt().length, e.generated(), e.preemptions, note));
        } catch (RuntimeException ignored) {
            // the client is gone; nothing else depends on this request
        }
    }

    private void publish() {
        long bytes = 0;
        double inv = 0;
        int seen = 0;
        List<Sequence> seqs = new ArrayList<>(running.size());
        for (Entry e : running) {
            seqs.add(e.seq);
            bytes += e.seq.kv().bytesAllocated();
            if (e.seq.kv().seenTokens() > 0) { inv += 1 / e.seq.kv().compressionRatio(); seen++; }
        }
        runningKvBytes = ledger.limit() > 0 ? bytes : ledger.held(seqs);
        compressionRatio = seen == 0 ? 1.0 : seen / inv;
        long rows = 0, nanos = 0;
        for (int i = 0; i < Math.min(recent, recentRows.length); i++) { rows += recentRows[i]; nanos += recentNanos[i]; }
        recentDecodeTps = nanos == 0 ? 0 : rows / (nanos / 1e9);
    }

    /** True once the scheduler thread has ended. */
    public boolean stopped() { return stopped; }
}
