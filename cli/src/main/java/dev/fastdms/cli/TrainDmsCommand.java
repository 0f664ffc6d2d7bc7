package dev.fastdms.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.fastdms.cache.DmsConfig;
import dev.fastdms.model.format.CheckpointWriter;
import dev.fastdms.model.format.ModelFile;
import dev.fastdms.model.format.ModelLoader;
import dev.fastdms.model.tensor.CpuCores;
import dev.fastdms.model.tokenizer.Tokenizer;
import dev.fastdms.model.tokenizer.Tokenizers;
import dev.fastdms.model.train.DmsTrainer;
import dev.fastdms.model.train.EvictionTarget;
import dev.fastdms.model.train.TrainOptions;
import dev.fastdms.model.train.TrainStats;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "train-dms", mixinStandardHelpOptions = true,
        description = "Retrofit a model with learned DMS: train all weights by distillation from the frozen original plus a "
                + "compression term, then write a checkpoint that carries the DMS parameters (GGUF for GGUF and llama2.c models, "
                + "a Hugging Face directory for one). The last --holdout of the data is never trained on and is written beside "
                + "the output as OUT.heldout.json (token ids, for eval --token-ids) and OUT.heldout.txt (its text).")
final class TrainDmsCommand implements Callable<Integer> {
    /**
     * Defaults: stories260K retrofits to CR 4 in under 15 minutes on 2 cores (docs/quality.md). Sequences fill the
     * model's context up to 512 tokens, so every position the engine will run at is trained.
     */
    static final class Defaults {
        static final String TARGET_CR = "4", WINDOW = "16", STEPS = "1000", BATCH = "4", LR = "1e-3",
                WEIGHT_DECAY = "0", SEED = "1", HOLDOUT = "0.1", DECISION = "channel", BUDGET = "global";
        static final int SEQ_LEN = 512;
    }

    @Option(names = {"-m", "--model"}, required = true, paramLabel = "MODEL", description = "GGUF file, Hugging Face directory or llama2.c .bin to retrofit.")
    Path model;

    @Option(names = "--data", required = true, paramLabel = "FILE", description = "UTF-8 training text (tokenized with BOS first). In-domain text works best: see the README.")
    Path data;

    @Option(names = {"-o", "--output"}, required = true, paramLabel = "OUT", description = "The checkpoint: a .gguf file, or a directory for a Hugging Face model.")
    Path output;

    @Option(names = "--target-cr", defaultValue = Defaults.TARGET_CR, paramLabel = "CR", description = "Compression ratio to train for (default ${DEFAULT-VALUE}).")
    double targetCr;

    @Option(names = "--window", defaultValue = Defaults.WINDOW, paramLabel = "W", description = "DMS window written into the checkpoint (default ${DEFAULT-VALUE}).")
    int window;

    @Option(names = "--decision", defaultValue = Defaults.DECISION, paramLabel = "KIND",
            description = {"Where the eviction decision comes from (default ${DEFAULT-VALUE}): channel = the borrowed query channel (last",
                    "channel of each KV group's first query head, zeroed in attention); adapter = a new learned projection of the",
                    "RMS-normed layer input (NVIDIA's separate alpha), every query channel kept."})
    String decisionName;

    @Option(names = "--budget", defaultValue = Defaults.BUDGET, paramLabel = "KIND",
            description = {"Over what the eviction rate must reach the target (default ${DEFAULT-VALUE}): global = the mean over all",
                    "layers and KV heads (the DMS paper's term; heads may settle on very different rates); per-head = every",
                    "layer's every KV head on its own."})
    String budgetName;

    @Option(names = "--steps", defaultValue = Defaults.STEPS, paramLabel = "N", description = "Optimizer steps (default ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--seq-len", paramLabel = "L", description = "Tokens per training sequence (default: the model's context, at most " + Defaults.SEQ_LEN + ").")
    Integer seqLenOption;
    private int seqLen = Defaults.SEQ_LEN;

    @Option(names = "--batch", defaultValue = Defaults.BATCH, paramLabel = "B", description = "Sequences per step (default ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--lr", defaultValue = Defaults.LR, paramLabel = "LR", description = "AdamW peak learning rate (default ${DEFAULT-VALUE}).")
    double lr;

    @Option(names = "--weight-decay", defaultValue = Defaults.WEIGHT_DECAY, paramLabel = "W", description = "AdamW decoupled weight decay (default ${DEFAULT-VALUE}).")
    double weightDecay;

    @Option(names = "--seed", defaultValue = Defaults.SEED, paramLabel = "S", description = "Seed of data order and Gumbel noise: the same seed gives the same checkpoint (default ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--threads", paramLabel = "N", description = "Worker threads (default: one per physical core; results do not depend on it).")
    Integer threads;

    @Option(names = "--holdout", defaultValue = Defaults.HOLDOUT, paramLabel = "F", description = "Fraction of the data's tokens, at its end, never trained on (0 <= F < 1, default ${DEFAULT-VALUE}).")
    double holdout;

    @Option(names = "--log", paramLabel = "FILE.jsonl", description = "Write one JSON object per step (step, loss, kl, compression_loss, eviction_rate, target_eviction_rate, min_head_eviction_rate, compression_ratio, seconds).")
    Path log;

    @Option(names = "--no-progress", description = "Do not draw the progress bar.")
    boolean noProgress;

    @Option(names = "--json", description = "Print the summary as one JSON object.")
    boolean json;

    @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

    private TrainOptions.Decision decision = TrainOptions.Decision.QUERY_CHANNEL;
    private TrainOptions.Budget budget = TrainOptions.Budget.GLOBAL;

    /** Limits past which a value is a typo, not a plan. */
    static final int MAX_STEPS = 10_000_000, MAX_SEQ_LEN = 1 << 20, MAX_BATCH = 4096;

    @Override
    public Integer call() throws IOException {
        validateFlags();
        boolean hf = Files.isDirectory(model);
        Path heldIds = sibling(output, ".heldout.json"), heldText = sibling(output, ".heldout.txt");
        validateOutputs(hf, heldIds, heldText);
        String text = TextFiles.readUtf8(data, "--data");
        PrintWriter out = spec.commandLine().getOut();
        try (ModelFile mf = ModelLoader.open(model)) {
            int ctx = mf.config().contextLength();
            if (seqLen > ctx) {
                if (seqLenOption != null) throw new IllegalArgumentException("--seq-len " + seqLen + " exceeds the model's context of " + ctx);
                seqLen = ctx;
                checkReachable();
            }
            Tokenizer tok = Tokenizers.forModel(mf);
            if (tok == null) throw new IllegalArgumentException(model + " carries no tokenizer to read --data with");
            HeldOut split = HeldOut.last(tok.encode(text, true, false), holdout);
            if (split.train().length < seqLen) {
                throw new IllegalArgumentException(data + ": " + split.train().length + " training tokens (after holding out " + split.heldOut().length
                        + "), fewer than one sequence of --seq-len " + seqLen);
            }
            if (holdout > 0 && split.heldOut().length < 2) {
                throw new IllegalArgumentException(data + ": --holdout " + holdout + " keeps " + split.heldOut().length + " tokens, too few to score (give more data or --holdout 0)");
            }
            TrainOptions options = new TrainOptions(targetCr, window, steps, seqLen, batch, lr, weightDecay, seed,
                    threads != null ? threads : CpuCores.forThisProcess(), decision, budget);
            long t0 = System.nanoTime();
            DmsTrainer trainer = new DmsTrainer(mf, split.train(), options);
            TrainStats last = train(trainer);
            double seconds = (System.nanoTime() - t0) / 1e9;
            DmsConfig dms = trainer.dms();
            CheckpointWriter.write(mf, trainer.tensors(), dms, output);
            ModelLoader.open(output).close(); // what was written must load
            if (split.heldOut().length > 0) {
                new ObjectMapper().writeValue(heldIds.toFile(), split.heldOut());
                Files.writeString(heldText, tok.decode(split.heldOut()));
            }
            summary(out, mf, split, last, dms, seconds, heldIds);
        }
        return 0;
    }

    private TrainStats train(DmsTrainer trainer) throws IOException {
        Progress bar = Progress.withMessage(noProgress || json);
        TrainStats s = null;
        try (TrainLog l = TrainLog.open(log)) {
            bar.start("train-dms", steps);
            for (int i = 0; i < steps; i++) {
                s = trainer.step();
                l.write(s);
                bar.message(String.format("loss %.4f KL %.4f CR %.2f", s.loss(), s.kl(), s.compressionRatio()));
                bar.advance(i + 1);
            }
        } finally {
            bar.end();
        }
        return s;
    }

    private void summary(PrintWriter out, ModelFile mf, HeldOut split, TrainStats last, DmsConfig dms, double seconds, Path heldIds) throws IOException {
        if (json) {
            ObjectMapper om = new ObjectMapper();
            ObjectNode o = om.createObjectNode();
            o.put("output", output.toString());
            o.put("format", CheckpointWriter.outputFormat(mf));
            o.put("decision", decision.cliName);
            o.put("budget", budget.cliName);
            o.put("steps", steps);
            o.put("seconds", seconds);
            o.put("ms_per_step", 1000 * seconds / steps);
            o.put("train_tokens", split.train().length);
            o.put("heldout_tokens", split.heldOut().length);
            o.put("heldout_ids", split.heldOut().length > 0 ? heldIds.toString() : null);
            ObjectNode d = o.putObject("dms");
            d.put("window", dms.window());
            d.put("alpha_scale", dms.alphaScale());
            d.put("alpha_offset", dms.alphaOffset());
            o.set("last_step", TrainLog.json(last));
            out.println(om.writeValueAsString(o));
        } else {
            out.printf("trained %d steps (%s decisions) in %.0f s (%.0f ms/step) on %d tokens: loss %.4f, KL %.4f, CR %.2f (target %.2f); wrote %s (DMS window %d, alpha scale %s, offset %s)%s%n",
                    steps, decision.cliName, seconds, 1000 * seconds / steps, split.train().length, last.loss(), last.kl(), last.compressionRatio(), targetCr,
                    output, dms.window(), dms.alphaScale(), dms.alphaOffset(),
                    split.heldOut().length > 0 ? "; held out " + split.heldOut().length + " tokens in " + heldIds : "");
        }
    }

    /** Every numeric flag, before anything is read: NaN, out of range, past what makes sense. */
    void validateFlags() {
        decision = TrainOptions.Decision.ofCliName(decisionName);
        if (decision == null) throw new IllegalArgumentException("--decision must be channel or adapter, got " + decisionName);
        budget = TrainOptions.Budget.ofCliName(budgetName);
        if (budget == null) throw new IllegalArgumentException("--budget must be global or per-head, got " + budgetName);
        if (!(targetCr >= 1 && targetCr <= 1000)) throw new IllegalArgumentException("--target-cr must be a number in [1, 1000], got " + targetCr);
        if (window < 0 || window > MAX_SEQ_LEN) throw new IllegalArgumentException("--window must be in [0, " + MAX_SEQ_LEN + "], got " + window);
        if (steps < 1 || steps > MAX_STEPS) throw new IllegalArgumentException("--steps must be in [1, " + MAX_STEPS + "], got " + steps);
        if (seqLenOption != null) seqLen = seqLenOption;
        if (seqLen < 2 || seqLen > MAX_SEQ_LEN) throw new IllegalArgumentException("--seq-len must be in [2, " + MAX_SEQ_LEN + "], got " + seqLen);
        if (batch < 1 || batch > MAX_BATCH) throw new IllegalArgumentException("--batch must be in [1, " + MAX_BATCH + "], got " + batch);
        if (!(lr > 0 && lr <= 1)) throw new IllegalArgumentException("--lr must be a number in (0, 1], got " + lr);
        if (!(weightDecay >= 0 && weightDecay <= 1)) throw new IllegalArgumentException("--weight-decay must be a number in [0, 1], got " + weightDecay);
        if (!(holdout >= 0 && holdout < 1)) throw new IllegalArgumentException("--holdout must be a fraction in [0, 1), got " + holdout);
        int cores = Runtime.getRuntime().availableProcessors();
        if (threads != null && (threads < 1 || threads > cores)) throw new IllegalArgumentException("--threads must be in [1, " + cores + "] (the available processors), got " + threads);
        checkReachable();
    }

    /** The window leaves room to evict, and the target CR is within what a sequence of seqLen can give. */
    private void checkReachable() {
        if (window >= seqLen) throw new IllegalArgumentException("--window " + window + " must be shorter than --seq-len " + seqLen + " (nothing would be evicted in training)");
        double reachable = EvictionTarget.maxCr(window, seqLen);
        if (targetCr > reachable) {
            throw new IllegalArgumentException(String.format("--target-cr %s cannot be reached: with --window %d a sequence of %d tokens keeps at least %d, CR at most %.2f",
                    targetCr, window, seqLen, window + 1, reachable));
        }
    }

    /** The model, data and every file this run will write, so a 15-minute run does not fail at its end. */
    private void validateOutputs(boolean hf, Path... heldOut) throws IOException {
        if (!Files.exists(model)) throw new IllegalArgumentException(model + ": no such model file or directory");
        if (!Files.isRegularFile(data)) throw new IllegalArgumentException(data + ": no such file (--data)");
        if (Files.exists(output) && Files.isSameFile(output, model)) throw new IllegalArgumentException("-o " + output + " is the model being retrofitted: write elsewhere");
        if (hf && Files.isRegularFile(output)) throw new IllegalArgumentException("-o " + output + " is a file; a Hugging Face model is written as a directory");
        if (!hf && Files.isDirectory(output)) throw new IllegalArgumentException("-o " + output + " is a directory (give a file name, e.g. OUT.gguf)");
        writableParent(output, "-o");
        if (hf && Files.isDirectory(output) && !Files.isWritable(output)) throw new IllegalArgumentException("-o " + output + ": directory is not writable");
        for (Path p : heldOut) {
            if (Files.isDirectory(p)) throw new IllegalArgumentException(p + " (the held-out split) is a directory");
        }
        if (log != null) {
            if (Files.isDirectory(log)) throw new IllegalArgumentException("--log " + log + " is a directory");
            if (Files.exists(log) && Files.exists(output) && Files.isSameFile(log, output)) throw new IllegalArgumentException("--log and -o name the same file");
            writableParent(log, "--log");
        }
    }

    private static void writableParent(Path p, String flag) {
        Path parent = p.toAbsolutePath().getParent();
        if (parent == null || !Files.isDirectory(parent)) throw new IllegalArgumentException(flag + " " + p + ": no such directory " + parent);
        if (!Files.isWritable(parent)) throw new IllegalArgumentException(flag + " " + p + ": directory " + parent + " is not writable");
    }

    /** OUT + suffix beside OUT (OUT.gguf.heldout.json; for a directory, a file next to it). */
    static Path sibling(Path out, String suffix) {
        Path abs = out.toAbsolutePath().normalize();
        return abs.resolveSibling(abs.getFileName() + suffix);
    }
}
