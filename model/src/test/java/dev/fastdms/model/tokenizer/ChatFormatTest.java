package dev.fastdms.model.tokenizer;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Turn-by-turn encodings equal the tokens of the whole conversation rendered as text the way the chat templates
 * write it, so a chat that appends each turn to its KV cache sees what a one-shot prompt would.
 */
class ChatFormatTest {

    static int[] concat(int[]... parts) { return ChatFormat.concat(parts); }

    @Test
    void llama3TurnsMatchTheTemplateText() {
        Tokenizer t = TestTokenizers.llama3();
        ChatFormat f = ChatFormat.forTokenizer(t);
        assertEquals("llama3", f.name());
        int[] first = concat(f.encodeStart("You are terse."), f.encodeUserTurn("Hi there", false));
        String firstText = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
        assertArrayEquals(t.encodeWithSpecials(firstText), first);
        // the answer and its <|eot_id|> were fed by generation; the next turn only appends
        int[] second = f.encodeUserTurn("And 2+2?", true);
        assertArrayEquals(t.encodeWithSpecials("<|start_header_id|>user<|end_header_id|>\n\nAnd 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"), second);
        assertArrayEquals(new int[]{t.id("<|eot_id|>")}, f.encodeAnswerEnd());
        int[] stops = f.stopTokens();
        assertTrue(Arrays.binarySearch(stops, 128009) >= 0 && Arrays.binarySearch(stops, 128001) >= 0, Arrays.toString(stops));
        assertArrayEquals(new int[]{t.bos()}, f.encodeStart(null));
    }

    @Test
    void chatMlTurnsMatchTheTemplateText() {
        Tokenizer t = TestTokenizers.qwen3();
        ChatFormat f = ChatFormat.forTokenizer(t);
        assertEquals("chatml", f.name());
        int[] first = concat(f.encodeStart("You are terse."), f.encodeUserTurn("Hi there", false));
        assertArrayEquals(t.encodeWithSpecials("<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n"), first);
        int[] second = f.encodeUserTurn("More?", true);
        assertArrayEquals(t.encodeWithSpecials("\n<|im_start|>user\nMore?<|im_end|>\n<|im_start|>assistant\n"), second);
        assertEquals(0, f.encodeStart(null).length, "Qwen conversations start without BOS");
        int[] stops = f.stopTokens();
        assertTrue(Arrays.binarySearch(stops, t.id("<|im_end|>")) >= 0 && Arrays.binarySearch(stops, t.id("<|endoftext|>")) >= 0);
    }

    @Test
    void plainFormatForBaseModels() {
        Tokenizer t = TestTokenizers.stories();
        ChatFormat f = ChatFormat.forTokenizer(t, Map.of());
        assertEquals("plain", f.name());
        assertArrayEquals(new int[]{1}, f.encodeStart(null));
        assertArrayEquals(t.encode("Once upon a time"), f.encodeUserTurn("Once upon a time", false));
        assertEquals(0, f.encodeAnswerEnd().length);
        assertArrayEquals(new int[]{2}, f.stopTokens());
    }

    @Test
    void ggufTemplateChoosesTheFormatWhenTheTokensExist() {
        Tokenizer llama3 = TestTokenizers.llama3();
        // a template naming ChatML cannot pick ChatML for a vocabulary without its tokens
        assertEquals("llama3", ChatFormat.forTokenizer(llama3, Map.of("tokenizer.chat_template", "{{'<|im_start|>' + role}}")).name());
        Tokenizer qwen = TestTokenizers.qwen3();
        assertEquals("chatml", ChatFormat.forTokenizer(qwen, Map.of("tokenizer.chat_template", "{{'<|im_start|>'}}")).name());
        assertNotNull(qwen.chatTemplate(), "tokenizer_config.json's chat_template is kept");
        assertTrue(qwen.chatTemplate().contains("<|im_start|>"));
        assertTrue(llama3.chatTemplate().contains("<|start_header_id|>"));
    }
}
