package dev.fastdms.model.tokenizer;

import dev.fastdms.model.TestAssets;
import dev.fastdms.model.format.ModelFormatException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.*;

/** Loading from every source, and one-line errors naming the file for broken ones. */
class TokenizersLoadTest {
    @TempDir Path dir;

    static void assertOneLineNaming(Path file, Runnable r) {
        ModelFormatException e = assertThrows(ModelFormatException.class, r::run);
        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
    }

    @Test
    void missingFile() {
        Path p = dir.resolve("nope.json");
        assertOneLineNaming(p, () -> Tokenizers.load(p));
    }

    @Test
    void corruptTokenizerJson() throws Exception {
        Path p = dir.resolve("tokenizer.json");
        Files.writeString(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0,");
        assertOneLineNaming(p, () -> Tokenizers.load(p));
        Files.writeString(p, "{\"model\": {\"type\": \"Unigram\"}}");
        assertOneLineNaming(p, () -> Tokenizers.load(p));
        Files.writeString(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {}}}");
        assertOneLineNaming(p, () -> Tokenizers.load(p));
    }

    @Test
    void corruptConfigBesideTokenizerJson() throws Exception {
        Path p = dir.resolve("tokenizer.json");
        Files.writeString(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a b\"]}}");
        Tokenizer t = Tokenizers.load(p);
        assertArrayEquals(new int[]{2}, t.encode("ab"));
        Path cfg = dir.resolve("tokenizer_config.json");
        Files.writeString(cfg, "{ not json");
        assertOneLineNaming(cfg, () -> Tokenizers.load(p));
    }

    @Test
    void corruptLlama2cTokenizer() throws Exception {
        byte[] good = Files.readAllBytes(TestAssets.asset("models/stories260K/tok512.bin"));
        Path truncated = dir.resolve("tok.bin");
        Files.write(truncated, Arrays.copyOf(good, good.length - 3));
        assertOneLineNaming(truncated, () -> Tokenizers.load(truncated));
        Path garbage = dir.resolve("garbage.bin");
        Files.write(garbage, ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(-5).putInt(0).array());
        assertOneLineNaming(garbage, () -> Tokenizers.load(garbage));
        Path empty = dir.resolve("empty.bin");
        Files.write(empty, new byte[0]);
        assertOneLineNaming(empty, () -> Tokenizers.load(empty));
    }

    @Test
    void ggufFileLoadsDirectly() {
        Tokenizer t = Tokenizers.load(TestAssets.asset("tokenizers/llama2/ggml-vocab-llama-spm.gguf"));
        assertEquals(32000, t.vocabSize());
        assertEquals(1, t.bos());
        assertEquals(2, t.eos());
        assertTrue(t.addsSpacePrefix());
        assertEquals(TokenType.BYTE, t.vocabulary().type(t.id("<0x0A>")));
        assertArrayEquals(new int[]{1, t.id("▁Hello")}, t.encode("Hello", true, false));
    }

    @Test
    void specialIdsOfEachTokenizer() {
        Tokenizer l3 = TestTokenizers.llama3();
        assertEquals(128000, l3.bos());
        assertEquals(128001, l3.eos());
        assertTrue(l3.addsBos());
        assertArrayEquals(new int[]{128001, 128009}, l3.stopTokens(), "end_of_text, eot_id (this vocabulary has 3.0 names: no eom_id)");
        Tokenizer s = TestTokenizers.stories();
        assertEquals(1, s.bos());
        assertArrayEquals(new int[]{2}, s.stopTokens());
        assertTrue(s.isSpecial(0) && s.isSpecial(1) && s.isSpecial(2) && !s.isSpecial(3));
    }

    @Test
    void ggufMetadataRoundTripsTheTokenizer() {
        Path json = TestAssets.asset("tokenizers/qwen3/tokenizer.json");
        Tokenizer direct = TestTokenizers.qwen3();
        Tokenizer viaGguf = Tokenizers.fromGguf(Tokenizers.ggufMetadata(json, direct.vocabSize() + 5), "synthetic");
        String text = "<|im_start|>user\n<think>Sum 12+30</think> café 🦙<|im_end|>";
        assertArrayEquals(direct.encodeWithSpecials(text), viaGguf.encodeWithSpecials(text));
        assertArrayEquals(direct.encode(text), viaGguf.encode(text));
        assertEquals(direct.bos(), viaGguf.bos());
        assertEquals(direct.addsBos(), viaGguf.addsBos());
        assertArrayEquals(direct.stopTokens(), viaGguf.stopTokens());
        assertEquals("chatml", ChatFormat.forTokenizer(viaGguf).name());
    }
}
