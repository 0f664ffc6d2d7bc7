package dev.fastdms.model;

/** Progress of a long task (model load, prefill) for whoever draws it; all methods may be no-ops. */
public interface ProgressListener {
    ProgressListener NONE = new ProgressListener() {
        @Override public void start(String task, long total) {}
        @Override public void advance(long done) {}
        @Override public void end() {}
    };

    void start(String task, long total);

    /** Work done so far (absolute). */
    void advance(long done);

    void end();
}
