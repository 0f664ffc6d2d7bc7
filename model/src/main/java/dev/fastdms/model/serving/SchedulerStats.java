package dev.fastdms.model.serving;

/**
 * A snapshot of the scheduler for monitoring.
 *
 * @param kvBytesInUse     KV bytes held by running sequences (payload and metadata)
 * @param kvBudgetBytes    the byte limit, or 0 when a device backend's slots are the limit
 * @param compressionRatio DMS compression ratio over the running sequences (1 when none or no eviction)
 * @param decodeTokensPerSecond aggregate decode speed over the last steps
 * @param maxDecodeBatch   the most sequences that decoded together in one step so far
 */
public record SchedulerStats(int running, int waiting, long kvBytesInUse, long kvBudgetBytes, double compressionRatio,
                             double decodeTokensPerSecond, long generatedTokens, long promptTokens, long decodeTokens,
                             double decodeSeconds, long preemptions, long finished, int maxDecodeBatch) {}
