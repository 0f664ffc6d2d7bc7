package dev.fastdms.cache;

import java.util.concurrent.atomic.AtomicLong;

/**
 * A byte limit for KV-cache memory, shared (thread-safely) by every sequence whose cache was built with it. A head
 * charges it whenever it allocates (a block of slots, a larger pending ring, per-slot policy scores) and the whole
 * cache gives its bytes back on {@link CompactKvCache#release()}. Exceeding it throws
 * {@link KvBudgetExceededException} before anything is allocated, never an OutOfMemoryError.
 */
public final class KvBudget {
    private final long limit;
    private final AtomicLong used = new AtomicLong();

    public KvBudget(long limitBytes) {
        if (limitBytes <= 0) throw new IllegalArgumentException("KV budget must be positive");
        this.limit = limitBytes;
    }

    public long limit() { return limit; }
    public long used() { return used.get(); }

    /** Takes {@code bytes} from the budget or throws without taking anything. */
    void reserve(long bytes) {
        long now = used.addAndGet(bytes);
        if (now > limit) {
            used.addAndGet(-bytes);
            throw new KvBudgetExceededException("KV cache budget exceeded: " + now + " bytes needed, --kv-budget is " + limit
                    + " bytes (raise it, use a smaller --kv-dtype, or compress more)");
        }
    }

    void release(long bytes) { used.addAndGet(-bytes); }
}
