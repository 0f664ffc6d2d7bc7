package dev.fastdms.cache;

/**
 * The DMS step protocol, written once: which token a decision flags, which keys a query sees, when a flagged key's
 * slot is freed, and the order of one KV head's cache updates in a forward step.
 *
 * <ul>
 *   <li>Window: a flagged key at p stays visible to queries q with {@code q - p <= window} and is gone from
 *       {@code q = p + window + 1} on; a key never flagged stays for ever.</li>
 *   <li>Conventions: under NVIDIA's, token p's decision flags p-1 (the last token has no decision yet); under
 *       FastDMS's, token p flags itself.</li>
 *   <li>A step (rows of one sequence, in position order): each row flags (NVIDIA: before its append), the first row
 *       reclaims what its query cannot see, the row appends (FastDMS: flags after). After the step's attention the
 *       head reclaims what the step's last query could not see, so the cache then holds exactly that query's view
 *       (its live counts and CR are the golden files').</li>
 * </ul>
 *
 * {@link HeadKv} applies {@link #visible} and {@link #windowClosed} to its slots; the JVM forward pass and the
 * benchmark's random fill drive heads through {@link #append} and {@link #endStep}. The OpenCL kernels in tornado/
 * cannot call Java methods and mirror these (each says which); the DMS golden and the kernel mirror test check both.
 */
public final class DmsStep {
    private DmsStep() {}

    /** Whether the key at p (flagged or not) is visible to a query at q. */
    public static boolean visible(int p, boolean flagged, int q, int window) {
        return p <= q && (q - p <= window || !flagged);
    }

    /** Whether a flagged key at p is invisible to every query from q on (its slot can be freed). */
    public static boolean windowClosed(int p, int q, int window) { return q - p > window; }

    /** The position the decision made at token {@code pos} is about (negative: none, the first NVIDIA token). */
    public static int decidedPosition(DmsConfig dms, int pos) {
        return dms.convention() == DmsConfig.Convention.NVIDIA ? pos - 1 : pos;
    }

    /**
     * Benchmarking's decision for (layer, KV head, decided position): true for a deterministic pseudo-random
     * {@code fraction} of tokens (models with random weights decide arbitrarily). A splitmix-style hash below the
     * fraction.
     */
    public static boolean forcedEviction(double fraction, int layer, int kvHead, int decided) {
        long h = (decided * 0x9E3779B97F4A7C15L) ^ ((long) layer << 40) ^ ((long) kvHead << 20);
        h ^= h >>> 31; h *= 0xBF58476D1CE4E5B9L; h ^= h >>> 29;
        return (h >>> 11) * 0x1.0p-53 < fraction;
    }

    /**
     * One row of a step for one head: the token at {@code pos} with its key, value and decision {@code evict}.
     *
     * @param dms          the sequence's DMS rule, or null (nothing is flagged; pending tokens still pass on)
     * @param firstOfStep  whether this is the sequence's first row in the step (it reclaims before appending: what
     *                     its query cannot see, no later query can; after the flag, so a window of 0 works)
     * @return the slot the token was stored in
     */
    public static int append(HeadKv head, DmsConfig dms, boolean evict, boolean firstOfStep, int pos,
                             float[] k, int kOff, float[] v, int vOff) {
        boolean flags = dms != null && evict;
        boolean nvidia = dms != null && dms.convention() == DmsConfig.Convention.NVIDIA;
        if (flags && nvidia && pos > 0) head.markEvicted(pos - 1);
        if (firstOfStep) head.reclaim(pos);
        int slot = head.append(pos, k, kOff, v, vOff);
        if (flags && !nvidia) head.markEvicted(pos);
        return slot;
    }

    /**
     * After the step's attention: frees what the step's last query (at {@code lastPos}) could not see, so memory
     * shrinks right after a prefill; the next step's first row frees the rest. Nothing without DMS.
     */
    public static void endStep(HeadKv head, DmsConfig dms, int lastPos) {
        if (dms != null) head.reclaim(lastPos);
    }
}
