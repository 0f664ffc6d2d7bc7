package dev.fastdms.model;

import dev.fastdms.model.format.SyntheticModel;
import dev.fastdms.model.tokenizer.ChatFormat;
import dev.fastdms.model.tensor.GgmlType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.*;

/** A chat answer cut off by the token limit is closed with the format's end-of-answer token before the next turn. */
class ChatSessionAnswerEndTest {
    @Test
    void truncatedAnswerIsClosedBeforeTheNextUserMessage(@TempDir Path tmp) throws Exception {
        // tiny random weights with the real Llama 3 vocabulary, so the Llama 3 chat format (and its <|eot_id|>) applies
        Path file = tmp.resolve("tiny-llama3.gguf");
        SyntheticModel.write(file, new SyntheticModel.Shape("llama", 32, 1, 2, 1, 16, 64, 128256, 256, 500000f, 0f, true),
                GgmlType.F32, TestAssets.asset("tokenizers/llama3/tokenizer.json"), 5);
        try (Engine e = Engine.open(Engine.Options.of(file), ProgressListener.NONE)) {
            ChatFormat f = e.chatFormat();
            assertTrue(f.encodeAnswerEnd().length > 0, "format " + f + " has an end-of-answer token");
            ChatSession chat = new ChatSession(e, null);
            Generator.Result r = chat.turn("Hello", 3, Sampler.Settings.greedy(), null);
            assertEquals(Generator.StopReason.MAX_TOKENS, r.stopReason());
            int[] next = chat.turnTokens("Again");
            int[] want = concat(concat(new int[]{r.ids()[2]}, f.encodeAnswerEnd()), f.encodeUserTurn("Again", true));
            assertArrayEquals(want, next, Arrays.toString(next));
        }
    }

    private static int[] concat(int[] a, int[] b) {
        int[] r = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }
}
