package dev.fastdms.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.fastdms.cache.KvDtype;
import dev.fastdms.model.Engine;
import dev.fastdms.model.KvSettings;
import dev.fastdms.model.JvmSequence;
import dev.fastdms.model.RandomFill;
import dev.fastdms.model.Sequence;
import dev.fastdms.model.Transformer;
import dev.fastdms.model.format.SyntheticModel;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "bench", mixinStandardHelpOptions = true,
        description = {"Throughput and KV memory of the configured KV cache against the dense BF16 baseline of the same engine,",
                "for each context length and batch size: c sequences are filled to the context, then decode --gen steps together.",
                "Rows report prefill and decode tok/s (aggregate over the batch), live KV bytes (payload + metadata), the",
                "dense-BF16 equivalent, measured CR, process memory, and the ratios against the dense row.",
                "Synthetic models (--synthetic) have random weights, so their DMS decisions are arbitrary: use",
                "--dms-evict-fraction (benchmarking only) to flag a deterministic pseudo-random fraction of tokens, still",
                "through the real delayed-eviction path.",
                "On a TornadoVM backend (--backend opencl|ptx) the sequences live on the device (--kv-slots / --kv-budget size",
                "their caches), prefill and decode pick tokens on the device, the baseline is the same --kv-dtype without",
                "eviction, and each row adds launches_per_step, kernel_ms_per_step and host_ms_per_step from a short",
                "profiled pass run apart from the timed one (tok/s are measured with the profiler off)."})
final class BenchCommand implements Callable<Integer> {
    @Mixin ModelOptions model = new ModelOptions();

    @Option(names = "--synthetic", paramLabel = "SHAPE", description = "Use a synthetic model of this shape (llama-3.2-1b, llama-3.2-3b, llama-3.1-8b, qwen3-8b), written once to the temp directory.")
    String synthetic;

    @Option(names = "--type", defaultValue = "q8_0", paramLabel = "TYPE", description = "Weight type of the synthetic model: q8_0 (default), q4_0, q4_k, q4_k_m, q6_k, f16 or bf16.")
    String type;

    @Option(names = "--ctx", split = ",", defaultValue = "1024", paramLabel = "N,...", description = "Context lengths to fill, e.g. 1024,8192,32768,131072 (default 1024).")
    List<Integer> contexts;

    @Option(names = "--gen", defaultValue = "32", paramLabel = "N", description = "Decode steps per row (default 32).")
    int gen;

    @Option(names = "--batch", split = ",", defaultValue = "1", paramLabel = "C,...", description = "Concurrent sequences (default 1).")
    List<Integer> batch;

    @Option(names = "--dms-evict-fraction", paramLabel = "F", description = "Benchmarking only: flag this fraction of tokens evictable (deterministic, per layer and head).")
    Double evictFraction;

    @Option(names = "--fill", defaultValue = "prefill", paramLabel = "HOW", description = "prefill (run the model over random tokens) or random (fill the caches with random keys/values: decode at depth without the prefill).")
    String fill;

    @Option(names = "--no-baseline", description = "Skip the dense BF16 baseline rows.")
    boolean noBaseline;

    @Option(names = "--json", description = "One JSON object per row.")
    boolean json;

    @Option(names = "--plot", paramLabel = "FILE.png", description = "Draw decode tok/s and KV GiB against context, compressed vs dense.")
    Path plot;

    @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

    record Row(String config, int ctx, int batch, String fill, double prefillTps, double decodeTps, long kvBytes,
               long denseBf16Bytes, double cr, long heapBytes, long offHeapBytes, Device device) {}

    /** A device row's step profile: launches and graph executions per step, and kernel / other milliseconds per profiled decode step. */
    record Device(int launchesPerStep, int executionsPerStep, Double kernelMsPerStep, Double hostMsPerStep) {}

    /** Rows per device step for the prefill (the engine's default), or the largest batch when that is more. */
    static final int DEVICE_ROWS = 32;

    @Override
    public Integer call() throws Exception {
        if (!fill.equals("prefill") && !fill.equals("random")) throw new IllegalArgumentException("--fill must be prefill or random");
        if (gen < 1) throw new IllegalArgumentException("--gen must be >= 1");
        for (int c : contexts) if (c < 1) throw new IllegalArgumentException("--ctx must be positive");
        for (int b : batch) if (b < 1 || b > Engine.MAX_ROWS) throw new IllegalArgumentException("--batch must be in 1.." + Engine.MAX_ROWS);
        if (evictFraction != null && !(evictFraction >= 0 && evictFraction <= 1)) throw new IllegalArgumentException("--dms-evict-fraction must be in [0, 1]");
        if (synthetic != null && model.model != null) throw new IllegalArgumentException("give -m MODEL or --synthetic SHAPE, not both");
        if (plot != null) checkWritable(plot);
        if (synthetic != null) model.model = syntheticModel();
        if (evictFraction != null && model.kvPolicy == null) model.kvPolicy = "dms";
        PrintWriter out = spec.commandLine().getOut();
        List<Row> rows = new ArrayList<>();
        boolean onDevice = !"jvm".equals(model.backend);
        if (onDevice && fill.equals("random")) throw new IllegalArgumentException("--fill random fills JVM caches: it runs on the jvm backend only");
        Engine.Options eo = model.toEngineOptions();
        // a device backend holds every sequence of the largest batch at once
        int maxBatch = batch.stream().mapToInt(Integer::intValue).max().orElse(1);
        if (onDevice) eo = eo.onDevice(model.backend, model.device == null ? -1 : model.device, model.kvSlots == null ? 0 : model.kvSlots,
                maxBatch, Math.max(DEVICE_ROWS, maxBatch));
        try (Engine engine = Engine.open(eo, Progress.forLoad(model.noProgress))) {
            int maxCtx = engine.config().contextLength();
            for (int c : contexts) {
                if (c > maxCtx || gen >= maxCtx) throw new IllegalArgumentException("--ctx " + c + " with --gen " + gen + " does not fit the model's context of " + maxCtx);
                // a row at the model's full context fills ctx - gen tokens, so decoding ends exactly at the context
                if (c + gen > maxCtx) System.err.println("bench: ctx " + c + ": filling " + (maxCtx - gen) + " tokens so that --gen " + gen + " fits the context");
            }
            if (batch.contains(1)) engine.prepareDecode(Progress.forLoad(model.noProgress || json));
            KvSettings kv = engine.kvSettings();
            // the device caches hold one element type: its baseline is that type without eviction
            KvSettings dense = onDevice ? new KvSettings(kv.dtype(), null) : new KvSettings(KvDtype.BF16, null);
            String denseName = onDevice ? "dense-" + kv.dtype().name().toLowerCase() : "dense-bf16";
            ObjectMapper om = new ObjectMapper();
            if (!json) {
                out.printf("model %s; fill=%s; gen=%d; config %s%s%n", engine.file().path().getFileName(), fill, gen, kv.describe(),
                        evictFraction != null ? " (forced evict fraction " + evictFraction + ")" : "");
                out.printf("%-34s %7s %5s %11s %11s %12s %12s %7s %10s %10s %9s %9s%n", "config", "ctx", "c", "prefill/s", "decode/s",
                        "kv_bytes", "dense_bf16", "CR", "heap_MiB", "offheap", "kv_x", "speed_x");
                out.flush();
            }
            var progress = Progress.forTask(model.noProgress || json);
            progress.start("bench", (long) contexts.size() * batch.size());
            int done = 0;
            for (int ctx : contexts) {
                for (int c : batch) {
                    progress.advance(done++);
                    Row base = noBaseline ? null : onDevice ? measureDevice(engine, dense, denseName, ctx, c, null)
                            : measure(engine, dense, denseName, ctx, c, null);
                    Row row = onDevice ? measureDevice(engine, kv, kv.describe(), ctx, c, evictFraction) : measure(engine, kv, kv.describe(), ctx, c, evictFraction);
                    for (Row r : base == null ? List.of(row) : List.of(base, row)) {
                        rows.add(r);
                        // no baseline, no ratio: null in JSON (a "NaN" string is not a number)
                        Double kvX = base == null ? null : (double) base.kvBytes() / r.kvBytes();
                        Double speedX = base == null ? null : r.decodeTps() / base.decodeTps();
                        if (json) {
                            ObjectNode o = om.createObjectNode();
                            o.put("config", r.config()).put("ctx", r.ctx()).put("batch", r.batch()).put("fill", r.fill())
                                    .put("gen", gen).put("prefill_tokens_per_s", r.prefillTps()).put("decode_tokens_per_s", r.decodeTps())
                                    .put("kv_bytes", r.kvBytes()).put("kv_bytes_dense_bf16", r.denseBf16Bytes())
                                    .put("compression_ratio", r.cr()).put("heap_bytes", r.heapBytes()).put("offheap_bytes", r.offHeapBytes())
                                    .put("kv_smaller_x", kvX).put("decode_faster_x", speedX);
                            if (evictFraction != null && r != base) o.put("dms_evict_fraction", evictFraction);
                            o.put("backend", model.backend);
                            if (r.device() != null) {
                                o.put("launches_per_step", r.device().launchesPerStep()).put("graph_executions_per_step", r.device().executionsPerStep())
                                        .put("kernel_ms_per_step", r.device().kernelMsPerStep())
                                        .put("host_ms_per_step", r.device().hostMsPerStep());
                            }
                            out.println(om.writeValueAsString(o));
                        } else {
                            out.printf("%-34s %7d %5d %11.1f %11.2f %12d %12d %7.2f %10.0f %10.0f %9.2f %9.2f%n", r.config(), r.ctx(), r.batch(),
                                    r.prefillTps(), r.decodeTps(), r.kvBytes(), r.denseBf16Bytes(), r.cr(), r.heapBytes() / 1048576.0,
                                    r.offHeapBytes() / 1048576.0, kvX == null ? Double.NaN : kvX, speedX == null ? Double.NaN : speedX);
                            if (r.device() != null) {
                                out.printf("  %s: %d launches in %d graph executions per step, %s ms in kernels + %s ms else per profiled decode step%n", model.backend,
                                        r.device().launchesPerStep(), r.device().executionsPerStep(), ms(r.device().kernelMsPerStep()), ms(r.device().hostMsPerStep()));
                            }
                        }
                        out.flush();
                    }
                }
            }
            progress.end();
        }
        if (plot != null) plot(rows);
        return 0;
    }

    /** The plot is written after the whole benchmark: a path that cannot be written is refused before it starts. */
    static void checkWritable(Path file) {
        Path dir = file.toAbsolutePath().getParent();
        if (Files.isDirectory(file)) throw new IllegalArgumentException("--plot " + file + " is a directory");
        if (dir == null || !Files.isDirectory(dir)) throw new IllegalArgumentException("--plot " + file + ": no such directory " + dir);
        if (!Files.isWritable(dir) || (Files.exists(file) && !Files.isWritable(file))) throw new IllegalArgumentException("--plot " + file + ": not writable");
    }

    private Path syntheticModel() throws Exception {
        SyntheticModel.Shape s = SyntheticModel.Shape.named(synthetic);
        SyntheticModel.Types t = SyntheticModel.Types.named(type);
        Path p = Path.of(System.getProperty("java.io.tmpdir"), "fastdms-synth-" + synthetic.toLowerCase() + "-" + type.toLowerCase() + ".gguf");
        if (!Files.exists(p)) {
            System.err.println("writing " + p + " (once)...");
            Path tmp = Files.createTempFile(p.getParent(), "fastdms-synth", ".part");
            SyntheticModel.write(tmp, s, t, null, 1);
            Files.move(tmp, p, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        }
        return p;
    }

    private Row measure(Engine engine, KvSettings kv, String name, int ctx, int c, Double fraction) {
        Transformer tf = engine.transformer();
        int fillTokens = Math.min(ctx, engine.config().contextLength() - gen);
        int vocab = engine.config().vocabSize();
        Sequence[] seqs = new Sequence[c];
        java.util.SplittableRandom r = new java.util.SplittableRandom(ctx * 31L + c);
        long t0 = System.nanoTime();
        for (int i = 0; i < c; i++) {
            seqs[i] = tf.newSequence(kv);
            if (fraction != null) seqs[i].forceEvictFraction(fraction);
            if (fill.equals("random")) {
                RandomFill.fill(JvmSequence.of(seqs[i]), fillTokens, i + 1);
            } else {
                int[] prompt = new int[fillTokens];
                for (int j = 0; j < fillTokens; j++) prompt[j] = r.nextInt(vocab);
                tf.forward(seqs[i], prompt, 0, fillTokens, null, false);
            }
        }
        double prefill = fill.equals("random") ? 0 : (double) fillTokens * c / ((System.nanoTime() - t0) / 1e9);
        float[] logits = new float[c * vocab];
        int[] toks = new int[c];
        for (int i = 0; i < c; i++) toks[i] = r.nextInt(vocab);
        // one warm-up step, then timed steps: each step advances every sequence by one token
        tf.forwardRows(seqs, toks, c, logits, 0, true);
        long t1 = System.nanoTime();
        for (int s = 1; s < gen; s++) {
            for (int i = 0; i < c; i++) toks[i] = dev.fastdms.model.Sampler.argmax(logits, i * vocab, vocab);
            tf.forwardRows(seqs, toks, c, logits, 0, true);
        }
        double decode = (double) (gen - 1) * c / ((System.nanoTime() - t1) / 1e9);
        long bytes = 0, dense = 0;
        double cr = 0;
        for (Sequence s : seqs) { var cache = JvmSequence.of(s).cache(); bytes += cache.bytesAllocated(); dense += cache.denseBf16Bytes(); cr += cache.compressionRatio(); }
        long heap = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
        long off = 0;
        for (BufferPoolMXBean b : ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class)) off += b.getMemoryUsed();
        Row row = new Row(name, ctx, c, fill, prefill, decode, bytes, dense, cr / c, heap, off, null);
        for (Sequence s : seqs) JvmSequence.of(s).cache().release();
        return row;
    }

    static String ms(Double v) { return v == null ? "n/a" : String.format(java.util.Locale.ROOT, "%.3f", v); }

    /**
     * A row on a device backend: each sequence is prefilled with random tokens (greedy pick on the device, no logits
     * cross the bus), then all decode together, one token per sequence per step, the greedy pick made on the device.
     * After a warm-up step, up to 8 decode steps (at most half of the rest) run with the device profiler on; the
     * remaining steps are timed with it off. Memory is the device caches' (the JVM's heap and off-heap as measured).
     */
    private Row measureDevice(Engine engine, KvSettings kv, String name, int ctx, int c, Double fraction) {
        var fp = engine.forward();
        int fillTokens = Math.min(ctx, engine.config().contextLength() - gen);
        int vocab = engine.config().vocabSize();
        Sequence[] seqs = new Sequence[c];
        java.util.SplittableRandom r = new java.util.SplittableRandom(ctx * 31L + c);
        int[] toks = new int[c];
        long t0 = System.nanoTime();
        for (int i = 0; i < c; i++) {
            seqs[i] = fp.newSequence(kv);
            if (fraction != null) seqs[i].forceEvictFraction(fraction);
            int[] prompt = new int[fillTokens];
            for (int j = 0; j < fillTokens; j++) prompt[j] = r.nextInt(vocab);
            toks[i] = fp.forwardArgmax(seqs[i], prompt, 0, fillTokens);
        }
        double prefill = (double) fillTokens * c / ((System.nanoTime() - t0) / 1e9);
        toks = fp.forwardRowsArgmax(seqs, toks, c); // warm-up
        int steps = gen - 1;
        Device device = null;
        if (fp instanceof dev.fastdms.model.DeviceProfile dp) {
            int profiled = Math.min(8, steps / 2);
            Double kernelMs = null, hostMs = null;
            if (profiled > 0) {
                dp.profiling(true);
                long k0 = dp.kernelNanos(), p0 = System.nanoTime();
                for (int s = 0; s < profiled; s++) toks = fp.forwardRowsArgmax(seqs, toks, c);
                double wallMs = (System.nanoTime() - p0) / 1e6 / profiled;
                kernelMs = (dp.kernelNanos() - k0) / 1e6 / profiled;
                hostMs = Math.max(0, wallMs - kernelMs);
                dp.profiling(false);
                steps -= profiled;
            }
            device = new Device(dp.launchesPerStep(), dp.executionsPerStep(), kernelMs, hostMs);
        }
        long t1 = System.nanoTime();
        for (int s = 0; s < steps; s++) toks = fp.forwardRowsArgmax(seqs, toks, c);
        double decode = (double) steps * c / ((System.nanoTime() - t1) / 1e9);
        long bytes = 0, dense = 0;
        double cr = 0;
        for (Sequence s : seqs) { bytes += s.kv().bytesAllocated(); dense += s.kv().denseBf16Bytes(); cr += s.kv().compressionRatio(); }
        long heap = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
        long off = 0;
        for (BufferPoolMXBean b : ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class)) off += b.getMemoryUsed();
        for (Sequence s : seqs) s.kv().release();
        return new Row(name, ctx, c, "prefill", prefill, decode, bytes, dense, cr / c, heap, off, device);
    }

    private void plot(List<Row> rows) throws Exception {
        XYChart speed = new XYChartBuilder().width(900).height(420).title("decode tok/s vs context").xAxisTitle("context").yAxisTitle("tok/s").build();
        XYChart mem = new XYChartBuilder().width(900).height(420).title("KV GiB vs context").xAxisTitle("context").yAxisTitle("GiB").build();
        java.util.Map<String, List<Row>> byConfig = new java.util.LinkedHashMap<>();
        for (Row r : rows) byConfig.computeIfAbsent(r.config() + " c=" + r.batch(), k -> new ArrayList<>()).add(r);
        for (var e : byConfig.entrySet()) {
            double[] x = e.getValue().stream().mapToDouble(Row::ctx).toArray();
            speed.addSeries(e.getKey(), x, e.getValue().stream().mapToDouble(Row::decodeTps).toArray());
            mem.addSeries(e.getKey(), x, e.getValue().stream().mapToDouble(r -> r.kvBytes() / (double) (1L << 30)).toArray());
        }
        var img = new java.awt.image.BufferedImage(900, 840, java.awt.image.BufferedImage.TYPE_INT_RGB);
        var g = img.createGraphics();
        speed.paint(g, 900, 420);
        g.translate(0, 420);
        mem.paint(g, 900, 420);
        g.dispose();
        javax.imageio.ImageIO.write(img, "png", plot.toFile());
        System.err.println("wrote " + plot);
    }
}
