package dev.fastdms.model.tokenizer;

import dev.fastdms.model.TestAssets;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * llama2.c's encoder written out naively in the test (rescan every pair, merge the best score, leftmost on ties;
 * code points outside the vocabulary become byte tokens id = byte + 3 first), read straight from the tokenizer.bin
 * bytes, as an independent reference for {@link SentencePieceBpe}.
 */
class Llama2cReferenceTest {

    /** The file's pieces and scores, parsed here without the production loader. */
    record Vocab(List<String> pieces, float[] scores, Map<String, Integer> ids) {
        static Vocab read(Path p) throws Exception {
            ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(p)).order(ByteOrder.LITTLE_ENDIAN);
            b.getInt();
            List<String> pieces = new ArrayList<>();
            List<Float> sc = new ArrayList<>();
            while (b.hasRemaining()) {
                sc.add(b.getFloat());
                byte[] s = new byte[b.getInt()];
                b.get(s);
                pieces.add(new String(s, StandardCharsets.UTF_8));
            }
            float[] scores = new float[sc.size()];
            Map<String, Integer> ids = new HashMap<>();
            for (int i = 0; i < scores.length; i++) { scores[i] = sc.get(i); ids.putIfAbsent(pieces.get(i), i); }
            return new Vocab(pieces, scores, ids);
        }

        List<Integer> encode(String text) {
            List<String> sym = new ArrayList<>();
            List<Integer> out = new ArrayList<>();
            if (text.isEmpty()) return out;
            String s = " " + text;
            // per code point: its piece, or its bytes as byte tokens (which never merge: "<0x..>" pieces)
            s.codePoints().forEach(cp -> {
                String c = new String(Character.toChars(cp));
                if (ids.containsKey(c)) sym.add(c);
                else for (byte x : c.getBytes(StandardCharsets.UTF_8)) sym.add(pieces.get((x & 0xFF) + 3));
            });
            while (true) {
                float best = -1e10f;
                int at = -1;
                for (int i = 0; i + 1 < sym.size(); i++) {
                    Integer id = ids.get(sym.get(i) + sym.get(i + 1));
                    if (id != null && scores[id] > best) { best = scores[id]; at = i; }
                }
                if (at < 0) break;
                sym.set(at, sym.get(at) + sym.remove(at + 1));
            }
            for (String x : sym) out.add(ids.get(x));
            return out;
        }
    }

    static int[] ints(List<Integer> l) { return l.stream().mapToInt(Integer::intValue).toArray(); }

    @Test
    void stories260KOnceUponATime() throws Exception {
        Vocab ref = Vocab.read(TestAssets.asset("models/stories260K/tok512.bin"));
        Tokenizer t = TestTokenizers.stories();
        assertEquals(512, t.vocabSize());
        int[] want = ints(ref.encode("Once upon a time"));
        assertArrayEquals(want, t.encode("Once upon a time"));
        // the pieces themselves: each word with its leading space
        assertArrayEquals(new String[]{" Once", " upon", " a", " time"},
                java.util.Arrays.stream(want).mapToObj(t::piece).toArray(String[]::new));
        for (String s : new String[]{"Lily and Ben went to the park.", "\"Wow!\" she said, 123 times.", "ünïcödé 🦙", "  two  spaces\n\nnewlines"}) {
            assertArrayEquals(ints(ref.encode(s)), t.encode(s), s);
            assertEquals(s, t.decode(t.encode(s)));
        }
    }

    @Test
    void llama2TokenizerBinAgreesWithTheNaiveEncoderOnWikiText() throws Exception {
        Vocab ref = Vocab.read(TestAssets.asset("tokenizers/llama2/tokenizer.bin"));
        Tokenizer t = TestTokenizers.llama2c();
        List<String> lines = Files.readAllLines(TestAssets.asset("eval/wikitext-2-raw/wiki.test.raw"), StandardCharsets.UTF_8);
        int checked = 0;
        for (String line : lines) {
            if (line.length() > 300) continue; // the naive encoder is quadratic
            assertArrayEquals(ints(ref.encode(line)), t.encode(line), line);
            if (++checked == 400) break;
        }
    }

    @Test
    void ggufSpmAndLlama2cAgreeOnPlainText() throws Exception {
        Tokenizer gguf = TestTokenizers.llama2Gguf(), bin = TestTokenizers.llama2c();
        List<String> lines = Files.readAllLines(TestAssets.asset("eval/wikitext-2-raw/wiki.test.raw"), StandardCharsets.UTF_8);
        int differ = 0;
        for (String line : lines) if (!java.util.Arrays.equals(gguf.encode(line), bin.encode(line))) differ++;
        assertEquals(0, differ, "lines where the GGUF SPM and llama2.c encodings of the same Llama 2 vocabulary differ");
    }
}
