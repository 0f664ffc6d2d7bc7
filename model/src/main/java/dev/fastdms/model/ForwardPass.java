package dev.fastdms.model;

import dev.fastdms.cache.DmsConfig;
import dev.fastdms.cache.KvDtype;

/**
 * The forward pass as the engine sees it, whatever executes it: the JVM {@link Transformer} (the reference) or a
 * device backend (TornadoVM). Rows are tokens of sequences at their next positions; every sequence owns a compacted
 * per-(layer, KV head) cache that the backend keeps where it computes.
 */
public interface ForwardPass extends AutoCloseable {
    ModelConfig config();

    /** Largest number of rows one {@link #forwardRows} step takes (prefill chunk, decode batch). */
    int maxRows();

    /** Backend name as on the command line: jvm, opencl, ptx, spirv. */
    String backend();

    /**
     * Readies single-row decode before the first step, for commands that will decode: the JVM backend makes its
     * decode copies of the weights here (load time, as llama.cpp repacks) rather than in the first decode step.
     */
    default void prepareDecode(ProgressListener progress) {}

    /** A new empty sequence with the given KV storage and eviction settings. */
    Sequence newSequence(KvSettings kv);

    default Sequence newSequence(KvDtype dtype, DmsConfig dms) { return newSequence(new KvSettings(dtype, dms)); }

    /**
     * Feeds {@code len} tokens of one sequence at its next positions, in chunks of {@link #maxRows()}.
     *
     * @param logits receives the logits of every token ([len][vocab]) when {@code allLogits}, else of the last token
     *               ([vocab]); may be null when no logits are wanted
     */
    default void forward(Sequence s, int[] tokens, int off, int len, float[] logits, boolean allLogits, ProgressListener progress) {
        int vocab = config().vocabSize();
        checkContext(s, len);
        for (int done = 0; done < len; ) {
            int n = Math.min(maxRows(), len - done);
            boolean last = done + n == len;
            int[] toks = java.util.Arrays.copyOfRange(tokens, off + done, off + done + n);
            if (logits == null) forwardRows(rows(s, n), toks, n, null, 0, false);
            else if (allLogits) forwardRows(rows(s, n), toks, n, logits, done * vocab, true);
            else forwardRows(rows(s, n), toks, n, last ? logits : null, 0, false);
            done += n;
            progress.advance(done);
        }
    }

    /** A context-overflow error when {@code len} more tokens do not fit after the sequence's position. */
    default void checkContext(Sequence s, int len) {
        if (s.position() + len > config().contextLength()) {
            throw new ContextOverflowException("context overflow: " + (s.position() + len) + " tokens exceed the context of " + config().contextLength());
        }
    }

    /** {@code n} rows of one sequence (a prefill chunk). */
    static Sequence[] rows(Sequence s, int n) {
        Sequence[] r = new Sequence[n];
        java.util.Arrays.fill(r, s);
        return r;
    }

    default void forward(Sequence s, int[] tokens, int off, int len, float[] logits, boolean allLogits) {
        forward(s, tokens, off, len, logits, allLogits, ProgressListener.NONE);
    }

    /**
     * One step over {@code n} rows: row i is token {@code tokens[i]} of sequence {@code seqs[i]} at that sequence's
     * next position. Rows of the same sequence must be contiguous, in position order. Logits: of every row into
     * out[outOff + i*vocab] when {@code everyRow}, else of the last row only into out[outOff ..]; none when out is null.
     */
    void forwardRows(Sequence[] seqs, int[] tokens, int n, float[] out, int outOff, boolean everyRow);

    /**
     * Greedy decoding where the backend can pick the token itself: feeds the tokens like {@link #forward} and
     * returns the argmax of the last token's logits, or -1 when this backend has no such shortcut (then the caller
     * asks for logits). Device backends use it so that only the token id crosses the bus.
     */
    default int forwardArgmax(Sequence s, int[] tokens, int off, int len) { return -1; }

    /**
     * One step over rows of different sequences (batched greedy decode), returning each row's greedy pick. Device
     * backends pick on the device and read only the ids back; this default asks for every row's logits.
     */
    default int[] forwardRowsArgmax(Sequence[] seqs, int[] tokens, int n) {
        int vocab = config().vocabSize();
        float[] logits = new float[n * vocab];
        forwardRows(seqs, tokens, n, logits, 0, true);
        int[] out = new int[n];
        for (int i = 0; i < n; i++) out[i] = Sampler.argmax(logits, i * vocab, vocab);
        return out;
    }

    @Override
    default void close() {}
}
