package dev.fastdms.model.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * SentencePiece-style BPE with byte fallback (Llama 2, llama2.c). A space prefix is added to the text (and, as
 * llama.cpp does, after every control token cut out of it), spaces become the vocabulary's space symbol (U+2581 in
 * SentencePiece/GGUF vocabularies, a plain space in llama2.c's tokenizer.bin), the text starts as one symbol per code
 * point, and the adjacent pair whose concatenation is the highest-scoring vocabulary piece is merged (leftmost on
 * ties) until no pair is in the vocabulary. What is left outside the vocabulary becomes its UTF-8 bytes as
 * {@code <0xXX>} tokens.
 */
public final class SentencePieceBpe implements Tokenizer {
    private final String name;
    private final Vocabulary vocab;
    private final float[] scores;
    private final String space;
    private final boolean addPrefix, byteFallbackFirst;
    private final String chatTemplate;
    private final int[] byteToken = new int[256];
    private final int unk;
    /** Pieces that merging may produce (normal and user-defined; never control or byte tokens). */
    private final Map<String, Integer> mergeable = new HashMap<>();

    /**
     * @param space             the vocabulary's space symbol: "\u2581" or " "
     * @param addPrefix         SentencePiece's add_dummy_prefix
     * @param byteFallbackFirst llama2.c's order: a code point outside the vocabulary becomes byte tokens before merging
     *                          (so it never merges); llama.cpp falls back only for what is left after merging
     */
    public SentencePieceBpe(String name, Vocabulary vocab, float[] scores, String space, boolean addPrefix,
                            boolean byteFallbackFirst, String chatTemplate) {
        this.name = name;
        this.vocab = vocab;
        this.scores = scores.length == vocab.size() ? scores : Arrays.copyOf(scores, vocab.size());
        this.space = space;
        this.addPrefix = addPrefix;
        this.byteFallbackFirst = byteFallbackFirst;
        this.chatTemplate = chatTemplate;
        Arrays.fill(byteToken, -1);
        int unknown = -1;
        for (int i = 0; i < vocab.size(); i++) {
            String p = vocab.piece(i);
            switch (vocab.type(i)) {
                case BYTE -> { int b = byteValue(p); if (b >= 0 && byteToken[b] < 0) byteToken[b] = i; }
                case NORMAL, USER_DEFINED, UNDEFINED -> { if (p != null) mergeable.putIfAbsent(p, i); }
                case UNKNOWN -> { if (unknown < 0) unknown = i; }
                default -> { }
            }
        }
        this.unk = unknown >= 0 ? unknown : 0;
    }

    /** The byte of a {@code <0xXX>} piece, or -1. */
    static int byteValue(String p) {
        if (p == null || p.length() != 6 || !p.startsWith("<0x") || p.charAt(5) != '>') return -1;
        try {
            return Integer.parseInt(p.substring(3, 5), 16);
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    @Override public int[] encode(String text) { return encode(text, false); }
    @Override public int[] encodeWithSpecials(String text) { return encode(text, true); }

    private int[] encode(String text, boolean parseSpecial) {
        IntList out = new IntList();
        SpecialTokenMatcher m = vocab.specialMatcher(parseSpecial);
        if (m.isEmpty()) {
            encodeFragment(text, addPrefix, out);
            return out.toArray();
        }
        boolean afterSpecial = true; // the first fragment gets the prefix, as does each one after an added token
        for (SpecialTokenMatcher.Segment s : m.split(text)) {
            if (s.text() == null) {
                out.add(s.token());
                afterSpecial = true;
            } else {
                encodeFragment(s.text(), addPrefix && afterSpecial, out);
                afterSpecial = false;
            }
        }
        return out.toArray();
    }

    private void encodeFragment(String text, boolean prefix, IntList out) {
        if (text.isEmpty()) return;
        String s = prefix ? " " + text : text;
        if (!space.equals(" ")) s = s.replace(" ", space);
        // symbols are stretches [start, start+len) of s, linked in text order; len 0 marks a symbol merged away
        int n = s.codePointCount(0, s.length());
        int[] start = new int[n], len = new int[n], next = new int[n], prev = new int[n];
        boolean[] frozen = new boolean[n];
        for (int i = 0, at = 0; i < n; i++) {
            int c = Character.charCount(s.codePointAt(at));
            start[i] = at;
            len[i] = c;
            next[i] = i + 1 < n ? i + 1 : -1;
            prev[i] = i - 1;
            frozen[i] = byteFallbackFirst && !mergeable.containsKey(s.substring(at, at + c));
            at += c;
        }
        // candidates (score descending, left position ascending) packed into a long: the heap's minimum is the best
        LongHeap heap = new LongHeap();
        for (int i = 0; i + 1 < n; i++) offer(heap, s, start, len, next, frozen, i);
        while (!heap.isEmpty()) {
            long c = heap.pop();
            int left = (int) c, right = next[left];
            if (len[left] == 0 || right < 0) continue;
            int id = mergedId(s, start, len, frozen, left, right);
            if (id < 0 || priority(id) != (int) (c >> 32)) continue; // stale: a side has changed since it was offered
            len[left] += len[right];
            len[right] = 0;
            next[left] = next[right];
            if (next[right] >= 0) prev[next[right]] = left;
            if (prev[left] >= 0) offer(heap, s, start, len, next, frozen, prev[left]);
            if (next[left] >= 0) offer(heap, s, start, len, next, frozen, left);
        }
        for (int i = 0; i >= 0; i = next[i]) {
            String piece = s.substring(start[i], start[i] + len[i]);
            Integer id = frozen[i] ? null : mergeable.get(piece);
            if (id != null) { out.add(id); continue; }
            for (byte b : piece.getBytes(StandardCharsets.UTF_8)) {
                int t = byteToken[b & 0xFF];
                out.add(t >= 0 ? t : unk);
            }
        }
    }

    private int mergedId(String s, int[] start, int[] len, boolean[] frozen, int left, int right) {
        if (frozen[left] || frozen[right]) return -1;
        Integer id = mergeable.get(s.substring(start[left], start[right] + len[right]));
        return id == null ? -1 : id;
    }

    private void offer(LongHeap heap, String s, int[] start, int[] len, int[] next, boolean[] frozen, int left) {
        int id = mergedId(s, start, len, frozen, left, next[left]);
        if (id >= 0) heap.push(((long) priority(id) << 32) | left);
    }

    /** A score as an int that sorts ascending for descending scores. */
    private int priority(int id) {
        int bits = Float.floatToIntBits(scores[id]);
        int ascending = bits ^ ((bits >> 31) & 0x7FFFFFFF); // IEEE order as signed int order
        return ~ascending;
    }

    @Override
    public byte[] bytes(int id) {
        TokenType t = vocab.type(id);
        if (t == TokenType.UNDEFINED && (id < 0 || id >= vocab.size())) return new byte[0];
        if (t.carriesNoText()) return new byte[0];
        if (t == TokenType.BYTE) {
            int b = byteValue(vocab.piece(id));
            return b >= 0 ? new byte[]{(byte) b} : new byte[0];
        }
        return vocab.piece(id).replace(space, " ").getBytes(StandardCharsets.UTF_8);
    }

    /** Decodes and drops the space prefix that encoding added. */
    @Override
    public String decode(int[] ids) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int id : ids) out.writeBytes(bytes(id));
        String s = new String(out.toByteArray(), StandardCharsets.UTF_8);
        return addPrefix && s.startsWith(" ") ? s.substring(1) : s;
    }

    @Override public boolean addsSpacePrefix() { return addPrefix; }
    @Override public Vocabulary vocabulary() { return vocab; }
    @Override public String chatTemplate() { return chatTemplate; }

    /** The score of a token (merge priority). */
    public float score(int id) { return id >= 0 && id < scores.length ? scores[id] : Float.NEGATIVE_INFINITY; }

    @Override
    public String describe() {
        return name + " SentencePiece BPE (byte fallback), " + vocab.size() + " tokens, BOS " + vocab.bos() + ", EOS " + vocab.eos();
    }
}
