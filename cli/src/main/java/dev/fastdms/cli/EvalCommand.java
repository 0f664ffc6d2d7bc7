package dev.fastdms.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.fastdms.cache.DmsConfig;
import dev.fastdms.cache.EvictionPolicy;
import dev.fastdms.cache.KvDtype;
import dev.fastdms.model.Engine;
import dev.fastdms.model.KvSettings;
import dev.fastdms.model.ProgressListener;
import dev.fastdms.model.eval.Evaluator;
import dev.fastdms.model.eval.SameVocabulary;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "eval", mixinStandardHelpOptions = true,
        description = {"Quality of a compressed KV cache against the full cache: perplexity of both, mean KL(full || compressed)",
                "per token, greedy token match, measured compression ratio and KV bytes, over sliding windows.",
                "Configurations: the model options (--kv-policy, --dms-*, --kv-dtype) and each --compare SPEC, e.g.",
                "  --compare dms:w=256  --compare dms:w=16,scale=100,offset=5,conv=fastdms,dtype=fp8  --compare none:dtype=q8",
                "  --compare knorm:cr=4  --compare tova:tokens=128  --compare h2o:cr=8,dtype=fp8  --compare snapkv:cr=2  --compare sink-window:cr=4"})
final class EvalCommand implements Callable<Integer> {
    @Mixin ModelOptions model = new ModelOptions();
    @Mixin ModelOptions.Ctx ctx = new ModelOptions.Ctx();

    @Option(names = "--text", paramLabel = "FILE", description = "Text to score (tokenized with BOS first).")
    Path text;

    @Option(names = "--token-ids", paramLabel = "FILE", description = "JSON array of token ids to score (no BOS added).")
    Path tokenIds;

    @Option(names = "--stride", paramLabel = "S", description = "Window advance (default: ctx/2). Each window scores only predictions no earlier window scored.")
    Integer stride;

    @Option(names = "--max-tokens", paramLabel = "N", description = "Score only the first N tokens of the input.")
    Integer maxTokens;

    @Option(names = "--compare", paramLabel = "SPEC", arity = "1..*", description = "Extra configurations: POLICY[:key=value,...] with keys w, scale, offset, conv (dms), cr, tokens (training-free), dtype.")
    List<String> compare = new ArrayList<>();

    @Option(names = "--reference-model", paramLabel = "MODEL", description = {"Take the full-cache baseline (ppl_full, KLD, token match) from this model instead,",
            "e.g. the original a DMS retrofit was trained from. It must share the model's tokenizer."})
    Path referenceModel;

    @Option(names = "--json", description = "Print {\"results\":[...]} as JSON.")
    boolean json;

    @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws IOException {
        if ((text == null) == (tokenIds == null)) throw new IllegalArgumentException("give exactly one of --text or --token-ids");
        if (stride != null && stride < 1) throw new IllegalArgumentException("--stride must be >= 1");
        if (maxTokens != null && maxTokens < 2) throw new IllegalArgumentException("--max-tokens must be >= 2 (one prediction needs two tokens)");
        PrintWriter out = spec.commandLine().getOut();
        if (referenceModel != null && !Files.exists(referenceModel)) throw new IllegalArgumentException(referenceModel + ": no such model file or directory (--reference-model)");
        try (Engine engine = Engine.open(model.toEngineOptions(ctx.value), Progress.forLoad(model.noProgress));
             Engine reference = referenceModel == null ? null : Engine.open(referenceOptions(), ProgressListener.NONE)) {
            if (reference != null) SameVocabulary.require(engine, reference);
            int[] ids = readTokens(engine);
            if (maxTokens != null) ids = java.util.Arrays.copyOf(ids, Math.min(ids.length, maxTokens));
            int limit = reference == null ? engine.config().contextLength() : Math.min(engine.config().contextLength(), reference.config().contextLength());
            int window = ctx.value != null ? ctx.value : Math.min(limit, Math.max(2, ids.length));
            int s = stride != null ? stride : Math.max(1, window / 2);
            var tf = engine.forward();
            List<Evaluator.Config> configs = new ArrayList<>();
            KvSettings base = engine.kvSettings();
            boolean explicitBase = model.kvPolicy != null || model.kvDtype != null || model.dmsWindow != null
                    || model.dmsAlphaScale != null || model.dmsAlphaOffset != null || model.dmsConvention != null;
            if (explicitBase || compare.isEmpty()) configs.add(new Evaluator.Config(base.describe(), () -> tf.newSequence(base)));
            for (String spec : compare) {
                KvSettings k = parseSpec(spec, engine.config().dms());
                configs.add(new Evaluator.Config(spec, () -> tf.newSequence(k)));
            }
            var progress = Progress.forTask(model.noProgress);
            int windows = ids.length <= window ? 1 : 1 + (ids.length - window + s - 1) / s;
            progress.start("eval", windows);
            var rf = reference == null ? tf : reference.forward();
            List<Evaluator.Result> results = new Evaluator(tf, rf).run(ids, window, s, () -> rf.newSequence(KvDtype.F32, null), configs,
                    (done, total) -> progress.advance(done));
            progress.end();
            if (json) {
                ObjectMapper om = new ObjectMapper();
                ObjectNode root = om.createObjectNode();
                ArrayNode arr = root.putArray("results");
                for (var r : results) {
                    ObjectNode o = arr.addObject();
                    o.put("config", r.config());
                    o.put("ppl", r.ppl());
                    o.put("ppl_full", r.pplFull());
                    o.put("kld", r.kld());
                    o.put("token_match", r.tokenMatch());
                    o.put("compression_ratio", r.compressionRatio());
                    o.put("kv_bytes", r.kvBytes());
                    o.put("kv_bytes_dense_bf16", r.kvBytesDenseBf16());
                    o.put("scored_tokens", r.scoredTokens());
                    o.put("ctx", window);
                    o.put("stride", s);
                    if (referenceModel != null) o.put("reference_model", referenceModel.toString());
                }
                out.println(om.writeValueAsString(root));
            } else {
                out.printf("%d tokens scored, ctx %d, stride %d%n", results.isEmpty() ? 0 : results.get(0).scoredTokens(), window, s);
                out.printf("%-40s %10s %10s %9s %8s %7s %12s %14s%n", "config", "ppl", "ppl_full", "kld", "match%", "CR", "kv_bytes", "dense_bf16");
                for (var r : results) {
                    out.printf("%-40s %10.4f %10.4f %9.5f %8.2f %7.2f %12d %14d%n", r.config(), r.ppl(), r.pplFull(), r.kld(),
                            100 * r.tokenMatch(), r.compressionRatio(), r.kvBytes(), r.kvBytesDenseBf16());
                }
            }
        }
        return 0;
    }

    /** The reference runs where the model runs, with a full cache (its own DMS parameters, if any, are not used). */
    private Engine.Options referenceOptions() {
        Engine.Options m = model.toEngineOptions(ctx.value);
        return new Engine.Options(referenceModel, null, 0, m.threads(), m.backend(), KvDtype.F32, "none",
                null, 0, 0, 0).onDevice(m.backend(), m.device(), m.kvSlots(), 1, 0);
    }

    private int[] readTokens(Engine engine) throws IOException {
        if (tokenIds != null) {
            if (!Files.isRegularFile(tokenIds)) throw new IllegalArgumentException(tokenIds + ": no such file");
            int[] ids;
            try {
                // 1.5 is not a token id: no silent truncation
                ids = new ObjectMapper().disable(com.fasterxml.jackson.databind.DeserializationFeature.ACCEPT_FLOAT_AS_INT)
                        .readValue(tokenIds.toFile(), int[].class);
            } catch (IOException e) {
                throw new IllegalArgumentException(tokenIds + ": not a JSON array of token ids (integers)");
            }
            for (int id : ids) {
                if (id < 0 || id >= engine.config().vocabSize()) throw new IllegalArgumentException(tokenIds + ": token id " + id + " outside the vocabulary");
            }
            return ids;
        }
        return engine.encodePrompt(TextFiles.readUtf8(text, "--text"));
    }


    /** POLICY[:key=value,...] on top of the checkpoint's DMS parameters. */
    static KvSettings parseSpec(String spec, DmsConfig checkpoint) {
        String[] head = spec.split(":", 2);
        String policy = head[0].trim().toLowerCase();
        if (!KvSettings.POLICIES.contains(policy)) {
            throw new IllegalArgumentException("--compare " + spec + ": unknown policy " + policy + " (" + String.join(", ", KvSettings.POLICIES) + ")");
        }
        Integer w = null, tokens = null; Float sc = null, off = null; Double cr = null; DmsConfig.Convention conv = null; KvDtype dt = KvDtype.F32;
        if (head.length > 1 && !head[1].isBlank()) {
            for (String kv : head[1].split(",")) {
                String[] p = kv.split("=", 2);
                if (p.length != 2) throw new IllegalArgumentException("--compare " + spec + ": expected key=value, got " + kv);
                String key = p[0].trim(), val = p[1].trim();
                try {
                    switch (key) {
                        case "w", "window" -> w = Integer.parseInt(val);
                        case "scale" -> sc = Float.parseFloat(val);
                        case "offset" -> off = Float.parseFloat(val);
                        case "conv" -> conv = DmsConfig.Convention.valueOf(val.toUpperCase());
                        case "dtype" -> dt = ModelOptions.parseDtype(val);
                        case "cr" -> cr = Double.parseDouble(val);
                        case "tokens" -> tokens = Integer.parseInt(val);
                        default -> throw new IllegalArgumentException("--compare " + spec + ": unknown key " + key + " (w, scale, offset, conv, dtype, cr, tokens)");
                    }
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("--compare " + spec + ": bad number " + val);
                } catch (IllegalArgumentException e) {
                    if (e.getMessage() != null && e.getMessage().startsWith("--compare")) throw e;
                    throw new IllegalArgumentException("--compare " + spec + ": bad value " + val);
                }
            }
        }
        if (w != null && w < 0) throw new IllegalArgumentException("--compare " + spec + ": window must be >= 0");
        EvictionPolicy.Kind kind = KvSettings.policyKind(policy);
        if (kind != null) {
            if (cr == null && tokens == null) throw new IllegalArgumentException("--compare " + spec + ": " + policy + " needs cr= or tokens=");
            if (cr != null && !(cr >= 1)) throw new IllegalArgumentException("--compare " + spec + ": cr must be >= 1");
            if (tokens != null && tokens < 1) throw new IllegalArgumentException("--compare " + spec + ": tokens must be >= 1");
            return new KvSettings(dt, null, EvictionPolicy.Spec.of(kind, cr == null ? 0 : cr, tokens == null ? 0 : tokens), null);
        }
        return new KvSettings(dt, KvSettings.resolveDms(policy, checkpoint, new KvSettings.DmsOverrides(w, sc, off, conv)));
    }
}
