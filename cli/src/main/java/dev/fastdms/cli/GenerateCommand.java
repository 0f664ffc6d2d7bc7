package dev.fastdms.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.fastdms.model.Engine;
import dev.fastdms.model.Generator;
import dev.fastdms.model.Sequence;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Generate text from a prompt, streaming it to stdout.")
final class GenerateCommand implements Callable<Integer> {
    @Mixin ModelOptions model = new ModelOptions();
    @Mixin ModelOptions.Ctx ctx = new ModelOptions.Ctx();
    @Mixin SamplingOptions sampling = new SamplingOptions();

    @Option(names = {"-p", "--prompt"}, paramLabel = "TEXT", description = "Prompt text. With no prompt the input is BOS alone.")
    String prompt;

    @Option(names = "--prompt-file", paramLabel = "FILE", description = "Read the prompt from a file.")
    Path promptFile;

    @Option(names = {"-n", "--max-tokens"}, paramLabel = "N", defaultValue = "256", description = "Tokens to generate at most (default 256).")
    int maxTokens;

    @Option(names = "--json", description = "Print one JSON object (prompt_ids, ids, text, speeds) instead of streaming text.")
    boolean json;

    @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws IOException {
        if (prompt != null && promptFile != null) throw new IllegalArgumentException("give --prompt or --prompt-file, not both");
        if (maxTokens < 0) throw new IllegalArgumentException("--max-tokens must be >= 0");
        String text = prompt;
        if (promptFile != null) text = TextFiles.readUtf8(promptFile, "--prompt-file");
        PrintWriter out = spec.commandLine().getOut();
        var settings = sampling.toSettings();
        long loadStart = System.nanoTime();
        try (Engine engine = Engine.open(model.toEngineOptions(ctx.value), Progress.forLoad(model.noProgress))) {
            if (maxTokens > 1) engine.prepareDecode(Progress.forLoad(model.noProgress));
            double loadSeconds = (System.nanoTime() - loadStart) / 1e9;
            int[] promptIds = engine.encodePrompt(text);
            Sequence seq = engine.newSequence();
            // a model without a tokenizer (driven by token ids) streams its ids
            var stream = engine.tokenizer() == null ? null : engine.textStream(promptIds);
            Generator.Result r = engine.generate(seq, promptIds, maxTokens, settings, id -> {
                if (!json) {
                    out.print(stream == null ? " " + id : stream.next(id));
                    if (out.checkError()) throw new StdoutClosedException(); // checkError flushes
                }
            }, Progress.forPrefill(model.noProgress, promptIds.length));
            if (json) {
                ObjectMapper om = new ObjectMapper();
                ObjectNode o = om.createObjectNode();
                o.putPOJO("prompt_ids", promptIds);
                o.putPOJO("ids", r.ids());
                // a model without a tokenizer (driven by token ids) has no text
                o.put("text", engine.tokenizer() == null ? null : engine.decode(engine.withoutStop(r.ids())));
                o.put("load_seconds", loadSeconds);
                o.put("prefill_tokens_per_s", r.prefillTokensPerSecond());
                o.put("decode_tokens_per_s", r.decodeTokensPerSecond());
                o.put("stop_reason", r.stopReason().name().toLowerCase());
                o.put("compression_ratio", seq.kv().compressionRatio());
                o.put("kv_bytes", seq.kv().bytesAllocated());
                o.put("kv_bytes_dense_bf16", seq.kv().denseBf16Bytes());
                var live = o.putArray("kv_live"); // tokens stored per [layer][kv head]
                for (int l = 0; l < seq.kv().layers(); l++) {
                    var row = live.addArray();
                    for (int h = 0; h < seq.kv().kvHeads(); h++) row.add(seq.kv().live(l, h));
                }
                out.println(om.writeValueAsString(o));
            } else {
                if (stream != null) out.print(stream.flush());
                out.println();
                out.flush();
                System.err.printf("[%d prompt tokens, %.1f tok/s prefill; %d generated, %.1f tok/s decode; stop: %s]%n",
                        promptIds.length, r.prefillTokensPerSecond(), r.ids().length, r.decodeTokensPerSecond(),
                        r.stopReason().name().toLowerCase());
            }
        }
        return 0;
    }
}
