package dev.fastdms.model.tokenizer;

import dev.fastdms.model.TestAssets;
import dev.fastdms.model.format.GGUF;

/** The big tokenizers, loaded once per test JVM and shared by the test classes. */
final class TestTokenizers {
    private TestTokenizers() {}

    private static Tokenizer llama3, qwen3, llama2Gguf, llama2c, stories;

    static synchronized Tokenizer llama3() {
        if (llama3 == null) llama3 = Tokenizers.load(TestAssets.asset("tokenizers/llama3/tokenizer.json"));
        return llama3;
    }

    static synchronized Tokenizer qwen3() {
        if (qwen3 == null) qwen3 = Tokenizers.load(TestAssets.asset("tokenizers/qwen3/tokenizer.json"));
        return qwen3;
    }

    static synchronized Tokenizer llama2Gguf() {
        if (llama2Gguf == null) {
            try (GGUF g = GGUF.open(TestAssets.asset("tokenizers/llama2/ggml-vocab-llama-spm.gguf"))) {
                llama2Gguf = Tokenizers.fromGguf(g.metadata(), "ggml-vocab-llama-spm.gguf");
            }
        }
        return llama2Gguf;
    }

    static synchronized Tokenizer llama2c() {
        if (llama2c == null) llama2c = Tokenizers.load(TestAssets.asset("tokenizers/llama2/tokenizer.bin"));
        return llama2c;
    }

    static synchronized Tokenizer stories() {
        if (stories == null) stories = Tokenizers.load(TestAssets.asset("models/stories260K/tok512.bin"));
        return stories;
    }
}
