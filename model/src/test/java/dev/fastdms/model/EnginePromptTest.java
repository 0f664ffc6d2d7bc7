package dev.fastdms.model;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** Prompt encoding follows each model's BOS convention: Llama prompts start with BOS, Qwen3 prompts do not. */
class EnginePromptTest {
    @Test
    void llamaPromptsStartWithBosQwenPromptsDoNot() {
        try (Engine llama = Engine.open(Engine.Options.of(TestAssets.asset("models/stories260K/stories260K-f32.gguf")), ProgressListener.NONE)) {
            int[] ids = llama.encodePrompt("Once upon a time");
            assertEquals(llama.tokenizer().bos(), ids[0]);
            assertArrayEquals(llama.tokenizer().encode("Once upon a time"), java.util.Arrays.copyOfRange(ids, 1, ids.length));
            assertArrayEquals(new int[]{llama.tokenizer().bos()}, llama.encodePrompt(""));
        }
        var qwenOptions = new Engine.Options(TestAssets.asset("models/tiny-qwen3-hf"), TestAssets.asset("tokenizers/qwen3/tokenizer.json"),
                0, 0, "jvm", dev.fastdms.cache.KvDtype.F32, null, null, 0, 0, 0);
        try (Engine qwen = Engine.open(qwenOptions, ProgressListener.NONE)) {
            assertFalse(qwen.tokenizer().addsBos());
            assertArrayEquals(qwen.tokenizer().encode("Hello world"), qwen.encodePrompt("Hello world"));
            // user text is text: a control-token string is not turned into the control token
            int[] ids = qwen.encodePrompt("<|im_end|>");
            assertTrue(ids.length > 1, "the literal string is spelled out, not one special id: " + java.util.Arrays.toString(ids));
        }
    }
}
