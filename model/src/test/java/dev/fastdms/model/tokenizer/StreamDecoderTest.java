package dev.fastdms.model.tokenizer;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.*;

/** Text comes out of the stream only once its UTF-8 characters are complete. */
class StreamDecoderTest {

    @Test
    void characterSplitOverByteTokensAppearsOnceComplete() {
        Tokenizer t = TestTokenizers.llama2Gguf();
        // U+1F999 (🦙) is not a Llama 2 piece, so it falls back to its four UTF-8 bytes as <0xXX> tokens
        byte[] utf8 = "🦙".getBytes(StandardCharsets.UTF_8);
        int[] want = new int[utf8.length];
        for (int i = 0; i < utf8.length; i++) want[i] = t.id(String.format("<0x%02X>", utf8[i] & 0xFF));
        int[] ids = t.encode("🦙");
        assertEquals(t.id("▁"), ids[0], "the dummy prefix is its own piece here");
        assertArrayEquals(want, java.util.Arrays.copyOfRange(ids, 1, ids.length));

        StreamDecoder d = t.streamDecoder();
        assertEquals(" ", d.next(ids[0]));
        for (int i = 0; i < 3; i++) {
            assertEquals("", d.next(want[i]), "byte " + i + " of 4 must be held back");
            assertEquals(i + 1, d.pendingBytes());
        }
        assertEquals("🦙", d.next(want[3]));
        assertEquals("", d.flush());
    }

    @Test
    void streamedTextEqualsDecodedTextForByteLevelBpe() {
        for (Tokenizer t : new Tokenizer[]{TestTokenizers.llama3(), TestTokenizers.qwen3()}) {
            String text = "Ünïcödé 🦙🚀 日本語のテキスト, ½ and ∑";
            StreamDecoder d = t.streamDecoder();
            StringBuilder sb = new StringBuilder();
            for (int id : t.encode(text)) {
                String s = d.next(id);
                assertFalse(s.contains("\uFFFD"), "no partial character may be emitted: " + t.describe());
                sb.append(s);
            }
            sb.append(d.flush());
            assertEquals(text, sb.toString());
        }
    }

    @Test
    void controlTokensStreamNothing() {
        Tokenizer t = TestTokenizers.llama3();
        StreamDecoder d = t.streamDecoder();
        assertEquals("", d.next(t.id("<|eot_id|>")));
        assertEquals("Hello", d.next(t.id("Hello")));
    }

    @Test
    void afterBosTheSentencePieceSpacePrefixIsDropped() {
        Tokenizer t = TestTokenizers.stories();
        int[] ids = t.encode("Once upon");
        StreamDecoder d = t.streamDecoder(true);
        StringBuilder sb = new StringBuilder();
        for (int id : ids) sb.append(d.next(id));
        assertEquals("Once upon", sb.toString());
        StreamDecoder plain = t.streamDecoder(false);
        assertEquals(" Once", plain.next(ids[0]));
    }

    @Test
    void malformedBytesAreReleasedNotHeldForever() {
        byte[] b = {(byte) 0x80, (byte) 0x80, (byte) 0x80, (byte) 0x80};
        assertEquals(4, StreamDecoder.completePrefix(b, 4));
        assertEquals(0, StreamDecoder.completePrefix(new byte[]{(byte) 0xE2, (byte) 0x82}, 2));
        assertEquals(3, StreamDecoder.completePrefix(new byte[]{(byte) 0xE2, (byte) 0x82, (byte) 0xAC}, 3));
    }
}
