package dev.fastdms.model;

/** Prompt plus generation would pass the context length (the model's or the user's --ctx). */
public class ContextOverflowException extends RuntimeException {
    public ContextOverflowException(String message) { super(message); }
}
