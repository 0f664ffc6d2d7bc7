package dev.fastdms.model.serving;

/** Why a request left the scheduler. */
public enum FinishReason {
    /** A stop token, or the listener asked to stop (a stop string). */
    STOP,
    /** The token limit or the end of the context. */
    LENGTH,
    /** The KV budget cannot hold this sequence even when it runs alone: finished early, the text so far is kept. */
    KV_BUDGET,
    /** The client went away, or the server shut down before it finished. */
    CANCELLED,
    /** The forward pass failed for this step (a bug or a device error); the server keeps serving. */
    ERROR
}
