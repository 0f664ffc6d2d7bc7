package dev.fastdms.model;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** The engine's text stream is the tokenizer's incremental decoder: streamed pieces add up to the decoded answer. */
class EngineTextStreamTest {
    @Test
    void streamedPiecesEqualTheDecodedGeneration() {
        try (Engine e = Engine.open(Engine.Options.of(TestAssets.asset("models/stories260K/stories260K-f32.gguf")), ProgressListener.NONE)) {
            int[] prompt = e.encodePrompt("");
            var stream = e.textStream(prompt);
            StringBuilder streamed = new StringBuilder();
            Generator.Result r = e.generate(e.newSequence(), prompt, 60, Sampler.Settings.greedy(), id -> streamed.append(stream.next(id)), ProgressListener.NONE);
            streamed.append(stream.flush());
            String decoded = e.decode(e.withoutStop(r.ids()));
            // right after BOS the SentencePiece space prefix of the first piece is dropped, as decode() drops it
            assertFalse(streamed.toString().startsWith(" "), streamed.toString());
            assertEquals(decoded, streamed.toString());
            // without the prompt's BOS context the first piece keeps its space
            var plain = e.textStream();
            assertEquals(" ", plain.next(r.ids()[0]).substring(0, 1));
            assertTrue(streamed.length() > 20, streamed.toString());
        }
    }

    @Test
    void aModelWithoutTokenizerSaysSo() {
        try (Engine e = Engine.open(Engine.Options.of(TestAssets.asset("models/tiny-llama-hf")), ProgressListener.NONE)) {
            assertNull(e.tokenizer());
            IllegalArgumentException x = assertThrows(IllegalArgumentException.class, e::textStream);
            assertTrue(x.getMessage().contains("has no tokenizer"), x.getMessage());
        }
    }
}
