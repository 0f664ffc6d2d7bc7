package dev.fastdms.model.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.fastdms.model.TestAssets;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** llama.cpp's tokenizer test vectors, the Llama 2/3 reference encodings, and round trips on WikiText-2. */
class TokenizerVectorsTest {
    static Tokenizer llama3, qwen3, llama2Gguf, llama2c;

    @BeforeAll
    static void load() {
        llama3 = TestTokenizers.llama3();
        qwen3 = TestTokenizers.qwen3();
        llama2Gguf = TestTokenizers.llama2Gguf();
        llama2c = TestTokenizers.llama2c();
    }

    /** Inputs separated by "\n__ggml_vocab_test__\n"; one output line of ids per input. */
    static void checkVectors(Tokenizer t, String base) throws Exception {
        String inp = Files.readString(TestAssets.asset(base + ".inp"), StandardCharsets.UTF_8);
        List<String> outs = Files.readAllLines(TestAssets.asset(base + ".out"), StandardCharsets.UTF_8);
        String[] cases = inp.split("\n__ggml_vocab_test__\n", -1);
        List<String> inputs = new ArrayList<>(Arrays.asList(cases));
        if (inputs.get(inputs.size() - 1).isEmpty()) inputs.remove(inputs.size() - 1);
        assertEquals(outs.size(), inputs.size(), "cases in " + base);
        int failures = 0;
        StringBuilder report = new StringBuilder();
        for (int i = 0; i < inputs.size(); i++) {
            String line = outs.get(i).trim();
            int[] want = line.isEmpty() ? new int[0] : Arrays.stream(line.split("\\s+")).mapToInt(Integer::parseInt).toArray();
            int[] got = t.encode(inputs.get(i));
            if (!Arrays.equals(want, got)) {
                failures++;
                report.append("\n  case ").append(i).append(" ").append(Arrays.toString(inputs.get(i).getBytes(StandardCharsets.UTF_8)).length() > 80 ? "" : "")
                        .append('"').append(inputs.get(i).replace("\n", "\\n")).append("\" want ").append(Arrays.toString(want))
                        .append(" got ").append(Arrays.toString(got));
            }
        }
        assertEquals(0, failures, failures + " of " + inputs.size() + " cases differ:" + report);
    }

    @Test
    void llama3MatchesLlamaCppVectors() throws Exception { checkVectors(llama3, "tokenizers/llama3/ggml-vocab-llama-bpe.gguf"); }

    @Test
    void llama3ThroughGgufMetadataMatchesLlamaCppVectors() throws Exception {
        Tokenizer viaGguf = Tokenizers.fromGguf(Tokenizers.ggufMetadata(TestAssets.asset("tokenizers/llama3/tokenizer.json"), llama3.vocabSize()), "llama3 as GGUF");
        checkVectors(viaGguf, "tokenizers/llama3/ggml-vocab-llama-bpe.gguf");
    }

    @Test
    void llama3EncodesAMegabyteInSeconds() throws Exception {
        String text = Files.readString(TestAssets.asset("eval/wikitext-2-raw/wiki.test.raw"), StandardCharsets.UTF_8).substring(0, 1 << 20);
        long t0 = System.nanoTime();
        int n = llama3.encode(text).length;
        double s = (System.nanoTime() - t0) / 1e9;
        assertTrue(n > 200_000, n + " tokens");
        assertTrue(s < 10, "1 MB took " + s + " s"); // typically well under a second; generous for a shared 2-core machine
    }

    @Test
    void llama2SpmMatchesLlamaCppVectors() throws Exception { checkVectors(llama2Gguf, "tokenizers/llama2/ggml-vocab-llama-spm.gguf"); }

    @Test
    void llama2cMatchesReferenceVectors() throws Exception {
        JsonNode ref = new ObjectMapper().readTree(TestAssets.asset("reference/llama2_tokenizer_vectors.json").toFile());
        for (JsonNode c : ref.get("cases")) {
            int[] want = new int[c.get("ids").size()];
            for (int i = 0; i < want.length; i++) want[i] = c.get("ids").get(i).asInt();
            int[] body = llama2c.encode(c.get("text").asText());
            int[] got = new int[body.length + 1];
            got[0] = llama2c.bos();
            System.arraycopy(body, 0, got, 1, body.length);
            assertArrayEquals(want, got, c.get("text").asText());
        }
    }

    @Test
    void llama3MatchesReferenceVectorsAndChatFormat() throws Exception {
        JsonNode ref = new ObjectMapper().readTree(TestAssets.asset("reference/llama3_tokenizer_vectors.json").toFile());
        ref.get("special").fields().forEachRemaining(e -> assertEquals(e.getValue().asInt(), llama3.id(e.getKey()), e.getKey()));
        for (JsonNode c : ref.get("cases")) {
            int[] want = new int[c.get("ids").size()];
            for (int i = 0; i < want.length; i++) want[i] = c.get("ids").get(i).asInt();
            int[] got;
            if (c.has("chat_message")) {
                ChatFormat f = ChatFormat.forTokenizer(llama3, null);
                assertEquals("llama3", f.name());
                got = ((ChatFormat.Llama3) f).message(c.get("chat_message").get("role").asText(), c.get("chat_message").get("content").asText());
            } else {
                int[] body = llama3.encode(c.get("text").asText());
                got = ChatFormat.concat(c.get("bos").asBoolean() ? new int[]{llama3.bos()} : new int[0], body,
                        c.get("eos").asBoolean() ? new int[]{llama3.id("<|end_of_text|>")} : new int[0]);
            }
            assertArrayEquals(want, got);
        }
    }

    @Test
    void qwen3SpecialsDigitsAndChatML() {
        int imStart = qwen3.id("<|im_start|>"), imEnd = qwen3.id("<|im_end|>");
        assertTrue(imStart > 150000 && imEnd > 150000);
        assertArrayEquals(new int[]{imStart}, qwen3.encodeWithSpecials("<|im_start|>"));
        assertTrue(qwen3.encode("<|im_start|>").length > 1, "plain encode must not parse special tokens");
        // Qwen splits numbers into single digits: each digit is its own vocabulary piece
        int[] digits = qwen3.encode("12345");
        assertEquals(5, digits.length);
        for (int i = 0; i < 5; i++) assertEquals(qwen3.id(String.valueOf((char) ('1' + i))), digits[i]);
        // Llama 3 groups digits by three
        assertEquals(2, llama3.encode("12345").length);
        // a common word is one token, with its leading space mapped to 'Ġ'
        assertArrayEquals(new int[]{qwen3.id("Hello"), qwen3.id("Ġworld")}, qwen3.encode("Hello world"));
        assertTrue(qwen3.isStop(imEnd));
        ChatFormat f = ChatFormat.forTokenizer(qwen3, null);
        assertEquals("chatml", f.name());
        String text = qwen3.decode(ChatFormat.concat(f.encodeStart("Be brief."), f.encodeUserTurn("Hi", false)));
        // control tokens decode to nothing; the rest is the ChatML text
        assertEquals("system\nBe brief.\nuser\nHi\nassistant\n", text);
    }

    @Test
    void roundTripsWikiText() throws Exception {
        List<String> lines = Files.readAllLines(TestAssets.asset("eval/wikitext-2-raw/wiki.test.raw"), StandardCharsets.UTF_8);
        for (Tokenizer t : List.of(llama3, qwen3, llama2Gguf, llama2c)) {
            int bad = 0;
            String first = null;
            for (String line : lines) {
                if (!t.decode(t.encode(line)).equals(line)) { bad++; if (first == null) first = line; }
            }
            assertEquals(0, bad, t.describe() + ": " + bad + " lines do not round-trip, e.g. \"" + first + "\"");
        }
    }

    @Test
    void stories260KTokenizerAgreesWithItsGoldenPromptIds() {
        Tokenizer t = TestTokenizers.stories();
        assertEquals(512, t.vocabSize());
        // the greedy golden's first tokens are BOS + "Once upon a time" as llama2.c encodes it
        assertArrayEquals(new int[]{403, 407, 261, 378}, t.encode("Once upon a time"));
        assertEquals("Once upon a time", t.decode(t.encode("Once upon a time")));
    }
}
