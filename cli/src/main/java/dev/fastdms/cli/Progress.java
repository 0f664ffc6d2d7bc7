package dev.fastdms.cli;

import dev.fastdms.model.ProgressListener;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/** Progress bars on stderr (me.tongfei progressbar), shown on a terminal for work long enough to watch. */
final class Progress implements ProgressListener {
    private final long minTotal;
    private ProgressBar bar;

    private Progress(long minTotal) { this.minTotal = minTotal; }

    static ProgressListener forLoad(boolean disabled) { return disabled ? NONE : new Progress(1); }

    /** Prefill bars only for prompts long enough to take a while. */
    static ProgressListener forPrefill(boolean disabled, int promptTokens) {
        return disabled || promptTokens < 512 ? NONE : new Progress(512);
    }

    static ProgressListener forTask(boolean disabled) { return disabled ? NONE : new Progress(1); }

    /** A bar that can show a message beside it (training: loss, KL, CR); a disabled one never draws. */
    static Progress withMessage(boolean disabled) { return new Progress(disabled ? Long.MAX_VALUE : 1); }

    void message(String text) { if (bar != null) bar.setExtraMessage(text); }

    @Override
    public void start(String task, long total) {
        if (total < minTotal || System.console() == null) return;
        bar = new ProgressBarBuilder().setTaskName(task).setInitialMax(total).setStyle(ProgressBarStyle.ASCII)
                .setConsumer(new ConsoleProgressBarConsumer(System.err)).setUpdateIntervalMillis(200).continuousUpdate().build();
    }

    @Override
    public void advance(long done) { if (bar != null) bar.stepTo(done); }

    @Override
    public void end() {
        if (bar != null) { bar.close(); bar = null; }
    }
}
