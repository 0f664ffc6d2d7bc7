package dev.fastdms.model.tokenizer;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.*;

/** Qwen3's tokenizer.json: expectations derived from the vocabulary itself (piece lookups), not from encoder output. */
class QwenTokenizerTest {
    final Tokenizer q = TestTokenizers.qwen3();

    @Test
    void controlTokensOnlyWithSpecialParsing() {
        int imStart = q.id("<|im_start|>"), imEnd = q.id("<|im_end|>");
        assertEquals(151644, imStart);
        assertEquals(151645, imEnd);
        assertArrayEquals(new int[]{imStart, q.id("user"), imEnd}, q.encodeWithSpecials("<|im_start|>user<|im_end|>"));
        assertArrayEquals(new int[]{imStart}, q.encode("<|im_start|>", false, true));
        int[] plain = q.encode("<|im_start|>");
        assertTrue(plain.length > 1 && java.util.Arrays.stream(plain).noneMatch(q::isSpecial), "plain encode must not parse control tokens");
        assertEquals("<|im_start|>", q.decode(plain));
        assertTrue(q.isSpecial(imStart));
        assertEquals("", q.decode(new int[]{imStart}), "control tokens carry no text");
    }

    @Test
    void userDefinedAddedTokensAreAlwaysSplitAndCarryText() {
        int think = q.id("<think>"), endThink = q.id("</think>");
        assertEquals(TokenType.USER_DEFINED, q.vocabulary().type(think));
        assertArrayEquals(new int[]{think, q.id("Hi"), endThink}, q.encode("<think>Hi</think>"));
        assertFalse(q.isSpecial(think));
        assertEquals("<think>Hi</think>", q.decode(q.encode("<think>Hi</think>")));
    }

    @Test
    void digitsSplitSinglyAndWordsTakeTheirSpace() {
        int[] ids = q.encode("year 2024");
        assertArrayEquals(new int[]{q.id("year"), q.id("Ġ"), q.id("2"), q.id("0"), q.id("2"), q.id("4")}, ids);
        assertArrayEquals(new int[]{q.id("Hello"), q.id("Ġworld"), q.id("!")}, q.encode("Hello world!"));
        // a newline is 'Ċ' in byte-level spelling
        assertArrayEquals(new int[]{q.id("Ċ")}, q.encode("\n"));
    }

    @Test
    void nfcNormalisesBeforeSplitting() {
        // "e" + combining acute accent is NFC-normalised to "é" before BPE, per tokenizer.json's normalizer
        assertArrayEquals(q.encode("caf\u00e9"), q.encode("cafe\u0301"));
    }

    @Test
    void roundTripsMixedScripts() {
        for (String s : new String[]{"Qwen3 是一个大语言模型。", "emoji 🦙🚀 and tabs\t\tand  spaces", "naïve café — ünïcödé", "   leading and trailing   ", ""}) {
            assertEquals(s, q.decode(q.encode(s)), s);
        }
    }

    @Test
    void specialIdsAndStops() {
        assertEquals(q.id("<|endoftext|>"), q.bos(), "Qwen names no BOS; <|endoftext|> stands in, never added");
        assertFalse(q.addsBos());
        assertEquals(q.id("<|im_end|>"), q.eos());
        assertTrue(q.isStop(q.id("<|im_end|>")));
        assertTrue(q.isStop(q.id("<|endoftext|>")));
        assertFalse(q.isStop(q.id("<|im_start|>")));
        assertArrayEquals(q.encode("hi"), q.encode("hi", true, false), "Qwen prompts get no BOS");
    }

    @Test
    void byteLevelPiecesDecodeToUtf8() {
        // 'Ġ' is the space byte in GPT-2's table; 'é' is two bytes, each spelled by a byte-level character
        assertArrayEquals(" ".getBytes(StandardCharsets.UTF_8), q.bytes(q.id("Ġ")));
        assertEquals("é", q.decode(q.encode("é")));
    }
}
