package dev.fastdms.model.serving;

/**
 * How a request ended: the reason, token counts for usage reporting, how often it was preempted, and a note for
 * the client when the ending needs explaining (null otherwise).
 */
public record Completion(FinishReason reason, int promptTokens, int completionTokens, int preemptions, String note) {}
