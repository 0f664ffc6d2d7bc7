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
 *
 * <li>{@link dev.fastdms.cache.DmsStep}: the step protocol, written once (window, conventions, the order of flag,
 * reclaim and append, the end-of-step reclaim to the last query's view); the JVM forward pass and the TornadoVM
 * kernels (which mirror it) both follow it. {@link dev.fastdms.cache.Q8Block}: the Q8 rounding rule every Q8 writer
 * uses.</li>
 * </ul>
 *
 * <h2>One step, per layer and KV head</h2>
 * <pre>
 * for each row i of the sequence:  DmsStep.append(head, dms, evict[i], i == 0, pos[i], k, kOff, v, vOff);
 * for each row i:                  head.attend(q, qOff, group, pos[i], scale, out, outOff, scratch);
 * after the rows:                  DmsStep.endStep(head, dms, pos[last]);
 * </pre>
 * A decode step is one row; a prefill chunk many; the result is the same as token-by-token decode.
 */
package dev.fastdms.cache;
