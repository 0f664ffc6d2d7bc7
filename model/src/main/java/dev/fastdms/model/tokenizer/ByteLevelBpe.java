package dev.fastdms.model.tokenizer;

import java.nio.charset.StandardCharsets;
import java.text.Normalizer;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Byte-level BPE (GPT-2 / tiktoken family: Llama 3, Qwen). Added tokens are cut out first; the rest is split by a
 * pre-tokenizer regex, and each piece's UTF-8 bytes, spelled with {@link ByteLevel}'s characters, start as one symbol
 * per byte and are merged pairwise, lowest merge rank first (leftmost on ties). With {@code ignoreMerges} (Llama 3) a
 * piece found whole in the vocabulary is taken as is, which can differ from what the merges would build.
 */
public final class ByteLevelBpe implements Tokenizer {
    /** Llama 3's pre-tokenizer: contractions, words, 1-3 digit groups, punctuation runs, newlines, spaces. */
    public static final String LLAMA3_PATTERN =
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    /** Qwen2/3's: the same with single digits. */
    public static final String QWEN2_PATTERN =
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    /** GPT-2's original (llama.cpp's "gpt2"/"default" pre-tokenizer). */
    public static final String GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

    /** Pieces longer than this are not cached (long runs are rare and would bloat the cache). */
    private static final int CACHE_PIECE_CHARS = 48, CACHE_ENTRIES = 1 << 16;

    private final String name;
    private final Vocabulary vocab;
    private final String[] mergeList;
    private final MergeTable merges;
    private final Pattern splitter;
    private final boolean ignoreMerges, nfc;
    private final String chatTemplate;
    private final int[] byteSymbol = new int[256];
    private final byte[][] bytes;
    private final Map<String, int[]> cache = new ConcurrentHashMap<>();

    /**
     * @param vocab        pieces in byte-level spelling; added tokens as their literal text
     * @param merges       merge rules "left right" in rank order
     * @param pattern      the pre-tokenizer regex
     * @param ignoreMerges look a whole piece up before merging (Llama 3)
     * @param nfc          NFC-normalise text before splitting (Qwen's tokenizer.json normalizer)
     * @param chatTemplate Jinja template shipped with the tokenizer, or null
     */
    public ByteLevelBpe(String name, Vocabulary vocab, List<String> merges, String pattern, boolean ignoreMerges, boolean nfc, String chatTemplate) {
        this.name = name;
        this.vocab = vocab;
        this.ignoreMerges = ignoreMerges;
        this.nfc = nfc;
        this.chatTemplate = chatTemplate;
        this.splitter = Pattern.compile(pattern, Pattern.UNICODE_CHARACTER_CLASS);
        for (int b = 0; b < 256; b++) byteSymbol[b] = vocab.id(String.valueOf(ByteLevel.charOf(b)));
        this.mergeList = merges.toArray(new String[0]);
        this.merges = new MergeTable(mergeList.length);
        for (int r = 0; r < mergeList.length; r++) {
            String m = mergeList[r];
            int sp = m.indexOf(' ', 1); // a piece never starts with a space in byte-level spelling
            if (sp < 0) continue;
            String left = m.substring(0, sp), right = m.substring(sp + 1);
            int a = vocab.id(left), b = vocab.id(right), ab = vocab.id(left + right);
            if (a >= 0 && b >= 0 && ab >= 0) this.merges.add(a, b, r, ab);
        }
        this.bytes = new byte[vocab.size()][];
        for (int i = 0; i < bytes.length; i++) bytes[i] = textOf(i);
    }

    private byte[] textOf(int id) {
        String p = vocab.piece(id);
        TokenType t = vocab.type(id);
        if (p == null || t.carriesNoText()) return new byte[0];
        if (t == TokenType.USER_DEFINED) return p.getBytes(StandardCharsets.UTF_8); // added tokens are literal text
        byte[] b = ByteLevel.decode(p);
        return b != null ? b : p.getBytes(StandardCharsets.UTF_8);
    }

    @Override public int[] encode(String text) { return encode(text, false); }
    @Override public int[] encodeWithSpecials(String text) { return encode(text, true); }

    private int[] encode(String text, boolean parseSpecial) {
        IntList out = new IntList();
        SpecialTokenMatcher m = vocab.specialMatcher(parseSpecial);
        if (m.isEmpty()) {
            encodeOrdinary(text, out);
        } else {
            for (SpecialTokenMatcher.Segment s : m.split(text)) {
                if (s.text() == null) out.add(s.token()); else encodeOrdinary(s.text(), out);
            }
        }
        return out.toArray();
    }

    private void encodeOrdinary(String text, IntList out) {
        if (text.isEmpty()) return;
        if (nfc && !Normalizer.isNormalized(text, Normalizer.Form.NFC)) text = Normalizer.normalize(text, Normalizer.Form.NFC);
        Matcher m = splitter.matcher(text);
        while (m.find()) {
            String piece = m.group();
            int[] ids;
            if (piece.length() <= CACHE_PIECE_CHARS) {
                ids = cache.get(piece);
                if (ids == null) {
                    ids = encodePiece(piece);
                    if (cache.size() >= CACHE_ENTRIES) cache.clear(); // crude bound: a long-running server must not grow without limit
                    cache.put(piece, ids);
                }
            } else {
                ids = encodePiece(piece);
            }
            for (int id : ids) out.add(id);
        }
    }

    /** One pre-tokenized piece: whole-piece lookup (ignore_merges), else rank-ordered merges over a linked list. */
    private int[] encodePiece(String piece) {
        if (ignoreMerges) {
            int whole = vocab.id(ByteLevel.encode(piece));
            if (whole >= 0) return new int[]{whole};
        }
        byte[] utf8 = piece.getBytes(StandardCharsets.UTF_8);
        int n = utf8.length;
        int[] sym = new int[n], next = new int[n], prev = new int[n];
        for (int i = 0; i < n; i++) {
            sym[i] = byteSymbol[utf8[i] & 0xFF];
            if (sym[i] < 0) throw new IllegalStateException(name + ": vocabulary lacks the byte token for 0x" + Integer.toHexString(utf8[i] & 0xFF));
            next[i] = i + 1 < n ? i + 1 : -1;
            prev[i] = i - 1;
        }
        if (n > 1) {
            // candidates (rank, left position): the heap's minimum is the lowest rank, leftmost on ties
            LongHeap heap = new LongHeap();
            for (int i = 0; i + 1 < n; i++) offer(heap, sym, i, i + 1);
            while (!heap.isEmpty()) {
                long c = heap.pop();
                int rank = (int) (c >>> 32), left = (int) c, right = next[left];
                if (sym[left] < 0 || right < 0 || merges.rank(sym[left], sym[right]) != rank) continue; // stale
                sym[left] = merges.result(sym[left], sym[right]);
                sym[right] = -1;
                next[left] = next[right];
                if (next[right] >= 0) prev[next[right]] = left;
                if (prev[left] >= 0) offer(heap, sym, prev[left], left);
                if (next[left] >= 0) offer(heap, sym, left, next[left]);
            }
        }
        IntList out = new IntList();
        for (int i = 0; i >= 0; i = next[i]) out.add(sym[i]);
        return out.toArray();
    }

    private void offer(LongHeap heap, int[] sym, int left, int right) {
        int r = merges.rank(sym[left], sym[right]);
        if (r >= 0) heap.push(((long) r << 32) | left);
    }

    /** Merge rules in rank order ("left right"). */
    public String[] merges() { return mergeList.clone(); }

    /** The lowest-numbered stop token (the EOS to record in metadata), or -1. */
    public int firstStop() { int[] s = vocab.stopTokens(); return s.length == 0 ? -1 : s[0]; }

    @Override public Vocabulary vocabulary() { return vocab; }
    @Override public byte[] bytes(int id) { return id >= 0 && id < bytes.length ? bytes[id] : new byte[0]; }
    @Override public String chatTemplate() { return chatTemplate; }

    @Override
    public String describe() {
        int bos = vocab.bos();
        return name + " byte-level BPE, " + vocab.size() + " tokens, " + merges.size() + " merges, BOS " + bos
                + (bos >= 0 ? " " + vocab.piece(bos) : "") + (vocab.addsBos() ? "" : " (not added)")
                + ", stop " + Arrays.toString(vocab.stopTokens());
    }
}
