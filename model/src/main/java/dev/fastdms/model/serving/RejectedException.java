package dev.fastdms.model.serving;

/** The scheduler did not take a request: its queue is full, or it is shutting down. */
public final class RejectedException extends RuntimeException {
    public enum Why { QUEUE_FULL, SHUTTING_DOWN }

    private final Why why;

    public RejectedException(Why why, String message) {
        super(message);
        this.why = why;
    }

    public Why why() { return why; }
}
