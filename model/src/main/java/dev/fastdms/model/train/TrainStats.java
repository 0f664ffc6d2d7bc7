package dev.fastdms.model.train;

/**
 * What one optimizer step measured, averaged over the step's tokens.
 *
 * @param loss               total loss optimised (kl + compression term)
 * @param kl                 KL(teacher || student) per token, nats
 * @param compressionLoss    the compression term
 * @param evictionRate       mean soft decision (fraction of tokens the heads evict) this step
 * @param targetEvictionRate the target the compression term pulls toward at this step
 * @param compressionRatio   the CR the hard decisions (logit > 0) of this step's batch give at its last query,
 *                           counted as the engine counts it (tokens seen / tokens retained, mean over layers and heads)
 * @param seconds            wall time of the step
 * @param minHeadEvictionRate the lowest per-(layer, KV head) mean soft decision, averaged over the batch: a head that
 *                           keeps everything shows here while the mean still looks on target
 */
public record TrainStats(int step, double loss, double kl, double compressionLoss, double evictionRate,
                         double targetEvictionRate, double compressionRatio, double seconds, double minHeadEvictionRate) {}
