package dev.fastdms.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.fastdms.model.Engine;
import dev.fastdms.model.ModelConfig;
import dev.fastdms.model.format.RawTensor;
import dev.fastdms.model.tensor.GgmlType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;

@Command(name = "inspect", mixinStandardHelpOptions = true,
        description = "Describe a model: architecture, dimensions, tensor types and bytes, tokenizer, chat format, memory estimate.")
final class InspectCommand implements Callable<Integer> {
    @Mixin ModelOptions model = new ModelOptions();
    @Mixin ModelOptions.Ctx ctx = new ModelOptions.Ctx();

    @Option(names = "--at", paramLabel = "TOKENS", description = "Context for the KV memory estimate (default: --ctx or the model's context).")
    Integer at;

    @Option(names = "--tensors", description = "List every tensor.")
    boolean tensors;

    @Option(names = "--json", description = "Print JSON.")
    boolean json;

    @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        if (at != null && at < 0) throw new IllegalArgumentException("--at must be >= 0");
        try (Engine engine = Engine.open(model.toEngineOptions(ctx.value), dev.fastdms.model.ProgressListener.NONE)) {
            ModelConfig c = engine.config();
            Map<GgmlType, long[]> byType = new TreeMap<>();
            long weightBytes = 0;
            for (RawTensor t : engine.file().tensors().values()) {
                long[] a = byType.computeIfAbsent(t.type(), k -> new long[2]);
                a[0]++;
                a[1] += t.data().byteSize();
                weightBytes += t.data().byteSize();
            }
            long tokens = at != null ? at : c.contextLength();
            // what the JVM backend's decode copies into /dev/shm (DecodeLayout): at load for the commands that decode
            long decodeCopies = engine.forward() instanceof dev.fastdms.model.Transformer t ? t.decodeCopyBytes() : 0;
            long perTokenElems = 2L * c.layers() * c.kvHeads() * c.headDim();
            var tok = engine.tokenizer();
            // where DMS decisions come from: a separate adapter projection, else (with DMS parameters) the borrowed query channel
            boolean adapter = engine.file().tensors().containsKey("blk.0.dms_alpha.weight");
            String decision = adapter ? "adapter" : c.dms() != null ? "channel" : null;
            if (json) {
                ObjectMapper om = new ObjectMapper();
                ObjectNode o = om.createObjectNode();
                o.put("path", engine.file().path().toString());
                o.put("format", engine.file().format());
                o.putPOJO("config", c);
                o.put("dms_decision", decision);
                ObjectNode types = o.putObject("tensor_types");
                byType.forEach((k, v) -> types.putObject(k.name()).put("count", v[0]).put("bytes", v[1]));
                o.put("weight_bytes", weightBytes);
                o.put("decode_copy_bytes", decodeCopies);
                o.put("kv_tokens", tokens);
                o.put("kv_bytes_f32", perTokenElems * 4 * tokens);
                o.put("kv_bytes_bf16", perTokenElems * 2 * tokens);
                o.put("kv_bytes_fp8", perTokenElems * tokens);
                o.put("tokenizer", tok == null ? null : tok.describe());
                o.put("chat_format", engine.chatFormat() == null ? null : engine.chatFormat().name());
                if (tensors) {
                    ObjectNode ts = o.putObject("tensors");
                    engine.file().tensors().forEach((n, t) -> ts.put(n, t.type() + " " + java.util.Arrays.toString(t.shape())));
                }
                out.println(om.writerWithDefaultPrettyPrinter().writeValueAsString(o));
                return 0;
            }
            out.printf("model        %s (%s)%n", engine.file().path(), engine.file().format());
            out.printf("architecture %s: dim %d, %d layers, %d query heads, %d KV heads (group %d), head dim %d, FFN %d, vocab %d%n",
                    c.architecture(), c.dim(), c.layers(), c.heads(), c.kvHeads(), c.groupSize(), c.headDim(), c.ffnDim(), c.vocabSize());
            out.printf("context      %d; RoPE theta %.0f, %s%s; RMS eps %g%s%s%n", c.contextLength(), c.ropeTheta(),
                    c.ropeHalf() ? "rotate-half" : "adjacent pairs",
                    c.ropeScaling() != null ? ", llama3 scaling x" + c.ropeScaling().factor() : engine.file().tensors().containsKey("rope_freqs.weight") ? ", rope_freqs tensor" : "",
                    c.rmsEps(), c.tiedEmbeddings() ? "; tied embeddings" : "", c.qkNorm() ? "; q/k RMSNorm" : "");
            out.printf("DMS          %s%n", c.dms() == null ? "none in the checkpoint (--kv-policy dms forces it)"
                    : "window " + c.dms().window() + ", alpha scale " + c.dms().alphaScale() + ", offset " + c.dms().alphaOffset()
                    + (adapter ? ", decisions from the adapter projection (dms_alpha)" : ", decisions from the borrowed query channel"));
            out.println("tensors      " + engine.file().tensors().size() + ", " + human(weightBytes));
            byType.forEach((k, v) -> out.printf("  %-6s %5d tensors %12s%n", k, v[0], human(v[1])));
            if (tensors) engine.file().tensors().forEach((n, t) -> out.printf("  %-40s %-5s %s%n", n, t.type(), java.util.Arrays.toString(t.shape())));
            out.printf("tokenizer    %s%n", tok == null ? "none" : tok.describe());
            out.printf("chat format  %s%n", engine.chatFormat() == null ? "none" : engine.chatFormat().name());
            out.printf("memory       weights %s (memory-mapped)%s; dense KV at %d tokens: F32 %s, BF16 %s, FP8 %s (DMS divides by its CR)%n",
                    human(weightBytes), decodeCopies > 0 ? ", decode copies " + human(decodeCopies) + " in /dev/shm" : "",
                    tokens, human(perTokenElems * 4 * tokens), human(perTokenElems * 2 * tokens), human(perTokenElems * tokens));
        }
        return 0;
    }

    static String human(long bytes) {
        if (bytes < 1024) return bytes + " B";
        String[] u = {"KiB", "MiB", "GiB", "TiB"};
        double v = bytes;
        int i = -1;
        while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
        return String.format("%.2f %s", v, u[i]);
    }
}
