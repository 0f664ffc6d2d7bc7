package dev.fastdms.cli.serve;

import dev.fastdms.model.serving.Completion;
import dev.fastdms.model.serving.Request;

import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * Hands a request's tokens from the scheduler thread to the HTTP thread that writes them: the scheduler never waits
 * on a slow or vanished client. Events are token ids ({@link Integer}) and, last, the {@link Completion}.
 */
final class TokenStream implements Request.Listener {
    private final LinkedBlockingQueue<Object> events = new LinkedBlockingQueue<>();

    @Override
    public boolean onToken(int id) {
        events.add(id);
        return true;
    }

    @Override
    public void onFinish(Completion completion) { events.add(completion); }

    /** The next token id or the completion; waits at most {@code seconds} (null when nothing came). */
    Object next(long seconds) throws InterruptedException { return events.poll(seconds, TimeUnit.SECONDS); }
}
