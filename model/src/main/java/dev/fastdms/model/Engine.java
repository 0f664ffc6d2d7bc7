package dev.fastdms.model;

import dev.fastdms.cache.DmsConfig;
import dev.fastdms.cache.EvictionPolicy;
import dev.fastdms.cache.KvBudget;
import dev.fastdms.cache.KvDtype;
import dev.fastdms.model.format.ModelFile;
import dev.fastdms.model.format.ModelLoader;
import dev.fastdms.model.tensor.Parallel;
import dev.fastdms.model.tokenizer.ChatFormat;
import dev.fastdms.model.tokenizer.StreamDecoder;
import dev.fastdms.model.tokenizer.Tokenizer;
import dev.fastdms.model.tokenizer.Tokenizers;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.function.IntPredicate;

/**
 * The engine API: a loaded model (any format), its tokenizer and chat format, and the JVM forward pass, plus the
 * KV settings every new sequence gets. This is what the CLI (and embedders) call.
 */
public final class Engine implements AutoCloseable {
    /**
     * @param ctx     context limit (0: the model's)
     * @param threads worker threads (0: all cores)
     * @param kvPolicy "none", "dms" or null (DMS when the checkpoint carries it or a DMS override is given)
     */
    public record Options(Path model, Path tokenizer, int ctx, int threads, String backend, KvDtype kvDtype,
                          String kvPolicy, KvSettings.DmsOverrides dms, double targetCr, int budgetTokens, long budgetBytes,
                          int device, int kvSlots, int maxSequences, int deviceRows) {
        public Options(Path model, Path tokenizer, int ctx, int threads, String backend, KvDtype kvDtype,
                       String kvPolicy, KvSettings.DmsOverrides dms, double targetCr, int budgetTokens, long budgetBytes) {
            this(model, tokenizer, ctx, threads, backend, kvDtype, kvPolicy, dms, targetCr, budgetTokens, budgetBytes, -1, 0, 1, 0);
        }

        public static Options of(Path model) {
            return new Options(model, null, 0, 0, "jvm", KvDtype.F32, null, null, 0, 0, 0);
        }

        /** The same options on another backend: device index, KV slots per head (0: the context), sequences, rows per step (0: default). */
        public Options onDevice(String backend, int device, int kvSlots, int maxSequences, int deviceRows) {
            return new Options(model, tokenizer, ctx, threads, backend, kvDtype, kvPolicy, dms, targetCr, budgetTokens, budgetBytes,
                    device, kvSlots, maxSequences, deviceRows);
        }
    }

    /** The provider serving {@code backend}, or a one-line error saying what is missing. */
    static BackendProvider provider(String backend) {
        for (BackendProvider p : BackendProvider.all()) {
            if (!p.names().contains(backend)) continue;
            String why = p.unavailableReason();
            if (why != null) throw new IllegalArgumentException("the " + backend + " backend cannot start: " + why);
            return p;
        }
        if (java.util.Set.of("opencl", "ptx", "spirv").contains(backend)) {
            throw new IllegalArgumentException("the " + backend + " backend runs on TornadoVM, which this build does not include"
                    + " (install a TornadoVM SDK, rebuild, run ./fastdms tornado-setup; see the README's TornadoVM section)");
        }
        throw new IllegalArgumentException("unknown backend '" + backend + "' (known: " + BackendProvider.knownBackends() + ")");
    }

    /** Largest number of tokens one forward step processes (prefill chunk, decode batch). */
    public static final int MAX_ROWS = 64;

    private final ModelFile file;
    private final ModelConfig config;
    private final ForwardPass forward;
    private final Tokenizer tokenizer;
    private final ChatFormat chatFormat;
    private final KvSettings kv;

    private Engine(ModelFile file, ModelConfig config, ForwardPass forward, Tokenizer tokenizer, ChatFormat chatFormat, KvSettings kv) {
        this.file = file;
        this.config = config;
        this.forward = forward;
        this.tokenizer = tokenizer;
        this.chatFormat = chatFormat;
        this.kv = kv;
    }

    public static Engine open(Options o, ProgressListener progress) {
        String backend = o.backend() == null ? "jvm" : o.backend();
        BackendProvider provider = "jvm".equals(backend) ? null : provider(backend);
        if (o.threads() > 0) Parallel.setThreads(o.threads());
        ModelFile file = ModelLoader.open(o.model());
        try {
            ModelConfig c = file.config();
            if (o.ctx() > 0) {
                if (o.ctx() > c.contextLength()) {
                    throw new IllegalArgumentException("--ctx " + o.ctx() + " exceeds the model's context of " + c.contextLength());
                }
                c = c.withContextLength(o.ctx());
            }
            EvictionPolicy.Kind kind = o.kvPolicy() == null ? null : KvSettings.policyKind(o.kvPolicy());
            DmsConfig dms = kind != null ? null : KvSettings.resolveDms(o.kvPolicy(), c.dms(), o.dms());
            EvictionPolicy.Spec policy = null;
            if (kind != null) {
                if (o.targetCr() <= 0 && o.budgetTokens() <= 0) {
                    throw new IllegalArgumentException("--kv-policy " + o.kvPolicy() + " needs --kv-target-cr or --kv-tokens");
                }
                policy = EvictionPolicy.Spec.of(kind, o.targetCr(), o.budgetTokens());
            }
            KvBudget budget = o.budgetBytes() > 0 ? new KvBudget(o.budgetBytes()) : null;
            progress.start("load", c.layers());
            Weights w = new Weights(file);
            progress.advance(c.layers());
            progress.end();
            Tokenizer tok = o.tokenizer() != null ? Tokenizers.load(o.tokenizer()) : Tokenizers.forModel(file);
            ChatFormat chat = tok == null ? null : ChatFormat.forTokenizer(tok, file.metadata());
            KvSettings kv = new KvSettings(o.kvDtype(), dms, policy, budget);
            ForwardPass forward;
            if (provider == null) {
                forward = new Transformer(c, w, MAX_ROWS);
            } else {
                if (policy != null) throw new IllegalArgumentException("--kv-policy " + o.kvPolicy() + " runs on the jvm backend only (the " + backend + " backend evicts by DMS)");
                if (budget != null && o.kvSlots() > 0) throw new IllegalArgumentException("give --kv-slots or --kv-budget for the " + backend + " backend's cache, not both");
                forward = provider.open(backend, o.device(), c, w, new BackendProvider.Options(o.deviceRows() > 0 ? o.deviceRows() : 32,
                        Math.max(1, o.maxSequences()), o.kvSlots(), kv, 0));
            }
            return new Engine(file, c, forward, tok, chat, kv);
        } catch (RuntimeException e) {
            file.close();
            throw e;
        }
    }

    public ModelFile file() { return file; }
    public ModelConfig config() { return config; }
    /** The forward pass of the selected backend. */
    public ForwardPass forward() { return forward; }

    /** The JVM forward pass (only on the jvm backend: benchmarks and tools that need its internals). */
    public Transformer transformer() {
        if (forward instanceof Transformer t) return t;
        throw new IllegalStateException("this needs the jvm backend, not " + forward.backend());
    }
    public KvSettings kvSettings() { return kv; }
    /** The tokenizer, or null for a model that carries none (then only token ids can be used). */
    public Tokenizer tokenizer() { return tokenizer; }
    public ChatFormat chatFormat() { return chatFormat; }

    public Sequence newSequence() { return forward.newSequence(kv); }

    /** Readies single-row decode now, for commands that will decode (see {@link ForwardPass#prepareDecode}). */
    public void prepareDecode(ProgressListener progress) { forward.prepareDecode(progress); }

    private Tokenizer requireTokenizer() {
        if (tokenizer == null) throw new IllegalArgumentException(file.path() + " has no tokenizer (pass --tokenizer FILE)");
        return tokenizer;
    }

    /**
     * The text's tokens, after BOS where the model's prompts start with one (Llama: yes; Qwen: no, as llama.cpp's
     * add_special); BOS alone for null or empty text. Control-token strings in user text stay plain text.
     */
    public int[] encodePrompt(String text) {
        if (tokenizer == null && (text == null || text.isEmpty())) return new int[]{1};
        Tokenizer t = requireTokenizer();
        if (text == null || text.isEmpty()) {
            if (t.bos() < 0) throw new IllegalArgumentException("this model has no BOS token to start from: give a prompt");
            return new int[]{t.bos()};
        }
        return t.encode(text, true, false);
    }

    public String decode(int[] ids) { return requireTokenizer().decode(ids); }

    public boolean isStop(int id) { return tokenizer != null && tokenizer.isStop(id); }

    /** The ids without a trailing stop token. */
    public int[] withoutStop(int[] ids) {
        return ids.length > 0 && isStop(ids[ids.length - 1]) ? Arrays.copyOf(ids, ids.length - 1) : ids;
    }

    /** Incremental detokenizer: text for each id as soon as it forms complete characters. */
    public StreamDecoder textStream() { return requireTokenizer().streamDecoder(); }

    /** A text stream for ids generated after {@code prompt}: right after BOS, a SentencePiece space prefix is dropped. */
    public StreamDecoder textStream(int[] prompt) {
        Tokenizer t = requireTokenizer();
        return t.streamDecoder(prompt.length > 0 && prompt[prompt.length - 1] == t.bos());
    }

    public Generator.Result generate(Sequence seq, int[] prompt, int maxNewTokens, Sampler.Settings settings,
                                     Generator.TokenSink sink, ProgressListener prefillProgress) {
        return generate(seq, prompt, maxNewTokens, settings, sink, prefillProgress, () -> false);
    }

    /** As above, ending early (stop reason CANCELLED) once {@code cancelled} says so. */
    public Generator.Result generate(Sequence seq, int[] prompt, int maxNewTokens, Sampler.Settings settings,
                                     Generator.TokenSink sink, ProgressListener prefillProgress, java.util.function.BooleanSupplier cancelled) {
        IntPredicate stop = this::isStop;
        return new Generator(forward).generate(seq, prompt, maxNewTokens, new Sampler(settings), stop, sink, prefillProgress, cancelled);
    }

    @Override
    public void close() {
        try { forward.close(); } finally { file.close(); }
    }
}
