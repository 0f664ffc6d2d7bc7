/**
 * The KV cache of fastdms, compressed by Dynamic Memory Sparsification (DMS). No dependencies beyond the JDK
 * (and its incubating Vector API).
 *
 * <h2>DMS in one paragraph</h2>
 * A DMS-retrofitted model decides, for every token and every KV head of every layer, whether that token's key and
 * value may be forgotten. The decision is not applied at once: a token flagged at position p stays visible to the
 * next {@code window} queries ("delayed eviction"), then disappears. So the key at p is visible to the query at q iff
 * {@code p <= q} and ({@code q - p <= window} or p was never flagged). Heads decide independently, so each
 * (layer, KV head) keeps its own set of live tokens, and the compression ratio is seen tokens over kept tokens,
 * averaged over heads. The flag for p may arrive one token late (NVIDIA's convention: token p+1 decides for p).
 *
 * <h2>Classes</h2>
 * <ul>
 * <li>{@link dev.fastdms.cache.CompactKvCache}: one sequence's cache, a {@link dev.fastdms.cache.HeadKv} per
 * (layer, KV head); accounting (bytes, live counts, compression ratio, dense-BF16 equivalent).</li>
 * <li>{@link dev.fastdms.cache.HeadKv}: one head's compacted storage: append, late flags, reclaim, immediate removal
 * for training-free policies, per-slot policy scores, and grouped-query attention under the DMS rule.</li>
 * <li>{@link dev.fastdms.cache.KvDtype} and {@code KvStore}: the element types (F32, F16, BF16, scaled FP8 E4M3,
 * block-scaled int8) and their paged row storage; {@code AttentionKernels}: the vectorised attention loops.</li>
 * <li>{@link dev.fastdms.cache.KvBudget} / {@link dev.fastdms.cache.KvBudgetExceededException}: a byte limit shared
 * by sequences, charged per block.</li>
 * <li>{@link dev.fastdms.cache.DmsConfig}: the DMS decision neuron and window; {@link dev.fastdms.cache.EvictionPolicy}:
 * training-free policies (sink-window, KNorm, TOVA, H2O, SnapKV) on the same storage.</li>
 * </ul>
 *
 * <h2>Call sequence of one decode step, per layer and KV head (one of the two markEvicted lines, by convention)</h2>
 * <pre>
 * head.markEvicted(pos - 1);        // NVIDIA convention: this token's decision is for the previous one
 * head.reclaim(pos);                // free what no query from pos on can see
 * head.append(pos, k, kOff, v, vOff);
 * head.markEvicted(pos);            // FastDMS convention: the token decides for itself
 * head.attend(q, qOff, group, pos, scale, out, outOff, scratch);
 * </pre>
 * A prefill appends a chunk of tokens, then attends at each position of the chunk, then reclaims; the result is the
 * same as token-by-token decode.
 */
package dev.fastdms.cache;
