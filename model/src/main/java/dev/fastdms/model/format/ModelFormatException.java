package dev.fastdms.model.format;

/** A model, tokenizer or config file that cannot be used: the message is one line a user can act on. */
public class ModelFormatException extends RuntimeException {
    public ModelFormatException(String message) { super(message); }
    public ModelFormatException(String message, Throwable cause) { super(message, cause); }
}
