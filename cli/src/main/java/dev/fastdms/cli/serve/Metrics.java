package dev.fastdms.cli.serve;

import dev.fastdms.model.serving.SchedulerStats;

import java.util.Locale;

/** The scheduler's state in the Prometheus text format (version 0.0.4). */
final class Metrics {
    private Metrics() {}

    static String render(SchedulerStats s, long requests, long rejected) {
        StringBuilder b = new StringBuilder();
        gauge(b, "fastdms_requests_running", "Requests whose sequences are in the engine (prefilling or decoding).", s.running());
        gauge(b, "fastdms_requests_waiting", "Requests queued for admission.", s.waiting());
        counter(b, "fastdms_requests_total", "Completion requests accepted into the queue.", requests);
        counter(b, "fastdms_requests_rejected_total", "Requests answered 429 (queue full) or 503 (shutting down).", rejected);
        counter(b, "fastdms_requests_finished_total", "Requests that left the scheduler.", s.finished());
        counter(b, "fastdms_tokens_generated_total", "Tokens generated.", s.generatedTokens());
        counter(b, "fastdms_prompt_tokens_total", "Prompt tokens of admitted requests.", s.promptTokens());
        gauge(b, "fastdms_kv_bytes_in_use", "KV cache bytes held by running sequences (payload and metadata).", s.kvBytesInUse());
        gauge(b, "fastdms_kv_budget_bytes", "KV byte budget (0: the device backend's sequence slots are the limit).", s.kvBudgetBytes());
        gauge(b, "fastdms_kv_compression_ratio", "DMS compression ratio (tokens seen / kept) over running sequences.", s.compressionRatio());
        gauge(b, "fastdms_decode_tokens_per_second", "Aggregate decode speed over the last 32 decode steps.", s.decodeTokensPerSecond());
        counter(b, "fastdms_decode_tokens_total", "Tokens produced by batched decode steps.", s.decodeTokens());
        counter(b, "fastdms_decode_seconds_total", "Time spent in batched decode steps.", s.decodeSeconds());
        counter(b, "fastdms_preemptions_total", "Sequences preempted to keep the KV budget (recomputed later).", s.preemptions());
        gauge(b, "fastdms_decode_batch_max", "Most sequences decoded together in one step.", s.maxDecodeBatch());
        return b.toString();
    }

    private static void gauge(StringBuilder b, String name, String help, double v) { metric(b, name, help, "gauge", v); }

    private static void counter(StringBuilder b, String name, String help, double v) { metric(b, name, help, "counter", v); }

    private static void metric(StringBuilder b, String name, String help, String type, double v) {
        b.append("# HELP ").append(name).append(' ').append(help).append('\n');
        b.append("# TYPE ").append(name).append(' ').append(type).append('\n');
        b.append(name).append(' ');
        if (v == Math.rint(v) && Math.abs(v) < 1e15) b.append((long) v);
        else b.append(String.format(Locale.ROOT, "%.6g", v));
        b.append('\n');
    }
}
