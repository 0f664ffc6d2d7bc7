package dev.fastdms.cli;

import dev.fastdms.cache.DmsConfig;
import dev.fastdms.cache.KvDtype;
import dev.fastdms.model.Engine;
import dev.fastdms.model.KvSettings;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;

/** Options shared by every command that loads a model: which model, where it runs, how its KV cache is kept. */
public final class ModelOptions {
    @Option(names = {"-m", "--model"}, paramLabel = "MODEL",
            description = "GGUF file, Hugging Face directory (config.json + safetensors) or llama2.c .bin. Default: the bundled stories260K.")
    Path model;

    @Option(names = "--tokenizer", paramLabel = "FILE", description = "Tokenizer file (tokenizer.json or llama2.c tokenizer .bin) when the model does not carry or sit beside one.")
    Path tokenizer;

    @Option(names = "--threads", paramLabel = "N", description = "Worker threads (default: one per physical core; at most the available processors).")
    Integer threads;

    @Option(names = "--backend", paramLabel = "NAME", defaultValue = "jvm", description = "jvm (default), opencl, ptx or spirv (TornadoVM).")
    String backend;

    @Option(names = "--device", paramLabel = "N", description = "Device index within a TornadoVM backend (default: its first device; see ./fastdms devices).")
    Integer device;

    @Option(names = "--kv-slots", paramLabel = "N", description = {"TornadoVM backends: KV slots per (sequence, layer, KV head) on the device (default: as many as --kv-budget holds for every sequence, else the context).",
            "With DMS, tokens retained plus the window and one step must fit; a full head stops generation with a clear error."})
    Integer kvSlots;

    @Option(names = "--kv-dtype", paramLabel = "TYPE", description = "KV cache element type: f32, f16, bf16, fp8, q8 (default f32).")
    String kvDtype;

    @Option(names = "--kv-policy", paramLabel = "NAME", description = {"none, dms, sink-window, knorm, tova, h2o or snapkv.",
            "Default: dms when the checkpoint carries DMS parameters or a --dms-* flag is given, else none.",
            "The training-free policies need --kv-target-cr or --kv-tokens."})
    String kvPolicy;

    @Option(names = "--kv-target-cr", paramLabel = "CR", description = "Training-free policies: keep tokens seen / CR per head.")
    Double kvTargetCr;

    @Option(names = "--kv-tokens", paramLabel = "N", description = "Training-free policies: keep at most N tokens per head.")
    Integer kvTokens;

    @Option(names = "--kv-budget", paramLabel = "BYTES", description = "Fail cleanly when the KV cache would pass this many bytes (suffixes K, M, G).")
    String kvBudget;

    @Option(names = "--dms-window", paramLabel = "W", description = "DMS delayed-eviction window in tokens.")
    Integer dmsWindow;

    @Option(names = "--dms-alpha-scale", paramLabel = "S", description = "DMS decision scale (default 100).")
    Float dmsAlphaScale;

    @Option(names = "--dms-alpha-offset", paramLabel = "O", description = "DMS decision offset (default 5).")
    Float dmsAlphaOffset;

    @Option(names = "--dms-convention", paramLabel = "C", description = "nvidia (token p+1 decides for p; default) or fastdms (token p decides for itself).")
    String dmsConvention;

    @Option(names = "--no-progress", description = "Do not draw progress bars.")
    boolean noProgress;

    /** Default model: the stories260K GGUF shipped in models/ beside the launcher. */
    static Path defaultModel() {
        Path root = Path.of(System.getProperty("fastdms.root", "."));
        return root.resolve("models/stories260K-f32.gguf");
    }

    /** The --ctx limit, for the commands that take one (bench takes a list of contexts instead). */
    public static final class Ctx {
        @Option(names = "--ctx", paramLabel = "N", description = "Context length limit (default: the model's). The KV cache grows with use, so this is a limit, not an allocation.")
        Integer value;
    }

    Engine.Options toEngineOptions() { return toEngineOptions(null); }

    Engine.Options toEngineOptions(Integer ctx) {
        Path m = model != null ? model : defaultModel();
        if (!Files.exists(m)) throw new IllegalArgumentException(m + ": no such model file or directory");
        if (ctx != null && ctx < 1) throw new IllegalArgumentException("--ctx must be positive");
        if (threads != null && threads < 1) throw new IllegalArgumentException("--threads must be positive");
        // more threads than processors only slows every step down (and thousands flood the machine)
        int cores = Runtime.getRuntime().availableProcessors();
        if (threads != null && threads > cores) throw new IllegalArgumentException("--threads " + threads + " exceeds the " + cores + " available processors");
        if (!"jvm".equals(backend)) {
            if (!java.util.Set.of("opencl", "ptx", "spirv").contains(backend)) {
                throw new IllegalArgumentException("unknown --backend " + backend + " (jvm, opencl, ptx or spirv)");
            }
        }
        if (kvPolicy != null && !KvSettings.POLICIES.contains(kvPolicy)) {
            throw new IllegalArgumentException("unknown --kv-policy " + kvPolicy + " (" + String.join(", ", KvSettings.POLICIES) + ")");
        }
        if (kvTargetCr != null && !(kvTargetCr >= 1 && kvTargetCr < Double.POSITIVE_INFINITY)) throw new IllegalArgumentException("--kv-target-cr must be a number >= 1");
        if (kvTargetCr != null && kvTokens != null) throw new IllegalArgumentException("give --kv-target-cr or --kv-tokens, not both");
        if (kvTokens != null && kvTokens < 1) throw new IllegalArgumentException("--kv-tokens must be >= 1");
        if ((kvTargetCr != null || kvTokens != null) && (kvPolicy == null || KvSettings.policyKind(kvPolicy) == null)) {
            throw new IllegalArgumentException("--kv-target-cr and --kv-tokens go with a training-free --kv-policy (sink-window, knorm, tova, h2o, snapkv)");
        }
        DmsConfig.Convention conv = null;
        if (dmsConvention != null) {
            conv = switch (dmsConvention.toLowerCase()) {
                case "nvidia" -> DmsConfig.Convention.NVIDIA;
                case "fastdms" -> DmsConfig.Convention.FASTDMS;
                default -> throw new IllegalArgumentException("unknown --dms-convention " + dmsConvention + " (nvidia or fastdms)");
            };
        }
        if (dmsWindow != null && dmsWindow < 0) throw new IllegalArgumentException("--dms-window must be >= 0");
        if (dmsAlphaScale != null && !Float.isFinite(dmsAlphaScale)) throw new IllegalArgumentException("--dms-alpha-scale must be a finite number");
        if (dmsAlphaOffset != null && !Float.isFinite(dmsAlphaOffset)) throw new IllegalArgumentException("--dms-alpha-offset must be a finite number");
        if (device != null && device < 0) throw new IllegalArgumentException("--device must be >= 0");
        if (kvSlots != null && kvSlots < 1) throw new IllegalArgumentException("--kv-slots must be positive");
        if ("jvm".equals(backend) && (device != null || kvSlots != null)) {
            throw new IllegalArgumentException("--device and --kv-slots go with a TornadoVM --backend (opencl, ptx, spirv)");
        }
        return new Engine.Options(m, tokenizer, ctx == null ? 0 : ctx, threads == null ? 0 : threads, backend,
                parseDtype(kvDtype), kvPolicy, new KvSettings.DmsOverrides(dmsWindow, dmsAlphaScale, dmsAlphaOffset, conv),
                kvTargetCr == null ? 0 : kvTargetCr, kvTokens == null ? 0 : kvTokens, parseBytes(kvBudget))
                .onDevice(backend, device == null ? -1 : device, kvSlots == null ? 0 : kvSlots, 1, 0);
    }

    static long parseBytes(String s) {
        if (s == null) return 0;
        String t = s.trim().toUpperCase().replace("IB", "").replace("B", "");
        long mul = 1;
        if (t.endsWith("K")) mul = 1L << 10; else if (t.endsWith("M")) mul = 1L << 20; else if (t.endsWith("G")) mul = 1L << 30;
        if (mul > 1) t = t.substring(0, t.length() - 1);
        try {
            double v = Double.parseDouble(t) * mul;
            if (!(v >= 1 && v < Long.MAX_VALUE)) throw new NumberFormatException(); // 0.5 bytes would silently mean no budget
            return (long) v;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("bad --kv-budget " + s + " (at least one byte, e.g. 512M or 2G)");
        }
    }

    static KvDtype parseDtype(String s) {
        if (s == null) return KvDtype.F32;
        return switch (s.toLowerCase()) {
            case "f32" -> KvDtype.F32;
            case "f16" -> KvDtype.F16;
            case "bf16" -> KvDtype.BF16;
            case "fp8", "fp8_e4m3", "e4m3" -> KvDtype.FP8_E4M3;
            case "q8", "q8_0", "int8" -> KvDtype.Q8;
            default -> throw new IllegalArgumentException("unknown --kv-dtype " + s + " (f32, f16, bf16, fp8, q8)");
        };
    }
}
