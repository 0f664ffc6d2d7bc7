package dev.fastdms.cli;

import dev.fastdms.cli.serve.OpenAiServer;
import dev.fastdms.model.Engine;
import dev.fastdms.model.serving.Scheduler;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

@Command(name = "serve", mixinStandardHelpOptions = true,
        description = {"An OpenAI-compatible HTTP server (chat/completions, completions, models, health, metrics) with",
                "continuous batching: running sequences decode together, prompts are prefilled in chunks between decode",
                "steps, and requests are admitted while their KV cache fits --kv-budget (JVM) or the device's slots.",
                "SIGINT/SIGTERM: new requests get 503, running ones finish for up to 10 s, then are cancelled."})
final class ServeCommand implements Callable<Integer> {
    /** How long running requests may finish after SIGINT/SIGTERM before they are cancelled. */
    static final Duration GRACE = Duration.ofSeconds(10);

    /** Helidon's start-up lines would bury the one ready line; its warnings still show. */
    private static final java.util.logging.Logger HELIDON_LOG = java.util.logging.Logger.getLogger("io.helidon");

    @Mixin ModelOptions model = new ModelOptions();
    @Mixin ModelOptions.Ctx ctx = new ModelOptions.Ctx();

    @Option(names = "--host", defaultValue = "127.0.0.1", paramLabel = "HOST", description = "Address to listen on (default 127.0.0.1).")
    String host;

    @Option(names = "--port", defaultValue = "8080", paramLabel = "PORT", description = "Port (default 8080; 0: any free port).")
    int port;

    @Option(names = "--max-seqs", defaultValue = "16", paramLabel = "N", description = "Sequences decoding together (default 16, at most 64).")
    int maxSeqs;

    @Option(names = "--max-queue", defaultValue = "256", paramLabel = "N", description = "Requests waiting for admission before 429 (default 256).")
    int maxQueue;

    @Override
    public Integer call() throws Exception {
        if (port < 0 || port > 65535) throw new IllegalArgumentException("--port must be in 0..65535");
        if (maxSeqs < 1 || maxSeqs > Engine.MAX_ROWS) throw new IllegalArgumentException("--max-seqs must be in 1.." + Engine.MAX_ROWS);
        if (maxQueue < 1) throw new IllegalArgumentException("--max-queue must be >= 1");
        HELIDON_LOG.setLevel(java.util.logging.Level.WARNING);
        Engine.Options o = ServeOptions.withServeDefaults(model.toEngineOptions(ctx.value), maxSeqs);
        Engine engine = Engine.open(o, Progress.forLoad(model.noProgress));
        Scheduler scheduler;
        OpenAiServer server;
        try {
            engine.prepareDecode(Progress.forLoad(model.noProgress));
            scheduler = new Scheduler(engine, Scheduler.Options.of(maxSeqs, maxQueue)).start();
            server = new OpenAiServer(engine, scheduler, o.model().getFileName().toString(), host, port).start();
        } catch (RuntimeException e) {
            engine.close();
            throw e;
        }
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.err.println("fastdms serve: shutting down");
            server.shutdown(GRACE);
            engine.close();
            stopped.countDown();
        }, "fastdms-serve-shutdown"));
        long budget = engine.kvSettings().budget() == null ? 0 : engine.kvSettings().budget().limit();
        System.err.printf("fastdms serve: listening on http://%s:%d, model %s, backend %s, kv %s, %s, max-seqs %d, max-queue %d%n",
                host, server.port(), server.modelId(), engine.forward().backend(), engine.kvSettings().describe(),
                budget > 0 ? "kv budget " + budget + " bytes" : "kv slots " + maxSeqs + " sequences", maxSeqs, maxQueue);
        stopped.await();
        return 0;
    }
}
