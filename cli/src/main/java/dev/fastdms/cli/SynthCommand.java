package dev.fastdms.cli;

import dev.fastdms.model.format.SyntheticModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "synth", mixinStandardHelpOptions = true,
        description = {"Write a GGUF with a real model's shapes and random weights (\"dummy weights\") for speed and memory work.",
                "Its outputs are meaningless; its speed is that of the real model."})
final class SynthCommand implements Callable<Integer> {
    @Option(names = "--shape", required = true, paramLabel = "SHAPE", description = "llama-3.2-1b, llama-3.2-3b, llama-3.1-8b or qwen3-8b.")
    String shape;

    @Option(names = "--type", defaultValue = "q8_0", paramLabel = "TYPE", description = "q8_0 (default), q4_0, q4_k, q4_k_m (Q4_K with Q6_K where llama-quantize puts it), q6_k, f16 or bf16.")
    String type;

    @Option(names = "--tokenizer-json", paramLabel = "FILE", description = "Embed this Hugging Face tokenizer.json (and tokenizer_config.json beside it).")
    Path tokenizerJson;

    @Option(names = "--seed", defaultValue = "1", paramLabel = "S", description = "Random seed (default 1).")
    long seed;

    @Option(names = {"-o", "--output"}, required = true, paramLabel = "OUT.gguf", description = "Output file.")
    Path output;

    @Override
    public Integer call() throws Exception {
        SyntheticModel.Shape s = SyntheticModel.Shape.named(shape);
        SyntheticModel.Types t = SyntheticModel.Types.named(type);
        if (tokenizerJson != null && !Files.isRegularFile(tokenizerJson)) throw new IllegalArgumentException(tokenizerJson + ": no such file");
        if (Files.isDirectory(output)) throw new IllegalArgumentException("-o " + output + " is a directory (give a file name, e.g. OUT.gguf)");
        Path parent = output.toAbsolutePath().getParent();
        if (parent != null && !Files.isDirectory(parent)) throw new IllegalArgumentException(parent + ": no such directory");
        long t0 = System.nanoTime();
        SyntheticModel.write(output, s, t, tokenizerJson, seed);
        System.err.printf("wrote %s (%s, %s, %.1f MiB) in %.1f s%n", output, shape, type, Files.size(output) / 1048576.0, (System.nanoTime() - t0) / 1e9);
        return 0;
    }
}
