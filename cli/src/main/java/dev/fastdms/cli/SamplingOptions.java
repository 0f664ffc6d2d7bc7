package dev.fastdms.cli;

import dev.fastdms.model.Sampler;
import picocli.CommandLine.Option;

/** Sampling flags shared by generate and chat. */
public final class SamplingOptions {
    @Option(names = "--temperature", paramLabel = "T", defaultValue = "0", description = "0 = greedy (default).")
    float temperature;
    @Option(names = "--top-k", paramLabel = "K", defaultValue = "0", description = "Keep the K most likely tokens (0 = all).")
    int topK;
    @Option(names = "--top-p", paramLabel = "P", defaultValue = "1", description = "Nucleus sampling mass (1 = off).")
    float topP;
    @Option(names = "--min-p", paramLabel = "P", defaultValue = "0", description = "Drop tokens below P x the top probability (0 = off).")
    float minP;
    @Option(names = "--repeat-penalty", paramLabel = "R", defaultValue = "1", description = "Repetition penalty (1 = off).")
    float repeatPenalty;
    @Option(names = "--seed", paramLabel = "S", description = "Random seed (default: time-based). Same seed, same text.")
    Long seed;

    Sampler.Settings toSettings() {
        return new Sampler.Settings(temperature, topK, topP, minP, repeatPenalty, 64, seed != null ? seed : System.nanoTime());
    }
}
