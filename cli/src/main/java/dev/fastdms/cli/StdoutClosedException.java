package dev.fastdms.cli;

/** Standard output was closed (e.g. piped into `head`): generating more text would be wasted work. */
final class StdoutClosedException extends RuntimeException {
    StdoutClosedException() { super("stdout was closed; generation stopped"); }
}
