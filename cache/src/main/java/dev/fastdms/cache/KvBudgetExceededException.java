package dev.fastdms.cache;

/** The KV cache would grow past its --kv-budget. */
public class KvBudgetExceededException extends RuntimeException {
    public KvBudgetExceededException(String message) { super(message); }
}
