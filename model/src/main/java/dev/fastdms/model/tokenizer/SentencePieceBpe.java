package dev.fastdms.model.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.PriorityQueue;

/**
 * SentencePiece-style BPE with byte fallback (Llama 2, llama2.c): a space prefix is added, spaces become the space
 * symbol (U+2581 in SentencePiece/GGUF vocabularies, a plain space in llama2.c's tokenizer.bin), the text starts as
 * one symbol per character, and the adjacent pair whose concatenation is the highest-scoring vocabulary piece is
 * merged (leftmost on ties) until no pair is in the vocabulary. Characters outside the vocabulary become their UTF-8
 * bytes as {@code <0xXX>} tokens.
 */
public final class SentencePieceBpe implements Tokenizer {
    private final String name;
    private final String[] pieces;
    private final float[] scores;
    private final boolean[] control;
    private final boolean[] isByte;
    private final int[] byteToken = new int[256];
    private final Map<String, Integer> ids = new HashMap<>();
    private final String space;
    private final boolean addPrefix;
    private final int bos, eos;

    /**
     * @param control which ids are control tokens (no text: unk, BOS, EOS)
     * @param space   the vocabulary's space symbol: "\u2581" or " "
     */
    public SentencePieceBpe(String name, String[] pieces, float[] scores, boolean[] control, String space, boolean addPrefix, int bos, int eos) {
        this.name = name;
        this.pieces = pieces;
        this.scores = scores;
        this.control = control;
        this.space = space;
        this.addPrefix = addPrefix;
        this.bos = bos;
        this.eos = eos;
        this.isByte = new boolean[pieces.length];
        java.util.Arrays.fill(byteToken, -1);
        for (int i = 0; i < pieces.length; i++) {
            String p = pieces[i];
            if (p.length() == 6 && p.startsWith("<0x") && p.endsWith(">")) {
                try {
                    int b = Integer.parseInt(p.substring(3, 5), 16);
                    if (byteToken[b] < 0) byteToken[b] = i;
                    isByte[i] = true;
                    continue;
                } catch (NumberFormatException ignored) {
                    // an ordinary piece that looks like one
                }
            }
            if (!control[i]) ids.putIfAbsent(p, i);
        }
    }

    private static final class Sym {
        String text; Sym prev, next; boolean dead;
        Sym(String t) { text = t; }
    }

    private record Bigram(Sym left, Sym right, float score, int order, String merged) {}

    @Override
    public int[] encode(String text) {
        IntList out = new IntList();
        if (text.isEmpty()) return out.toArray();
        String s = (addPrefix ? " " : "") + text;
        if (!space.equals(" ")) s = s.replace(" ", space);
        // one symbol per code point, linked for O(1) merges
        Sym head = null, tail = null;
        int order = 0;
        Map<Sym, Integer> pos = new HashMap<>();
        for (int i = 0; i < s.length(); ) {
            int cp = s.codePointAt(i);
            Sym sym = new Sym(new String(Character.toChars(cp)));
            pos.put(sym, order++);
            if (head == null) head = sym; else { tail.next = sym; sym.prev = tail; }
            tail = sym;
            i += Character.charCount(cp);
        }
        PriorityQueue<Bigram> pq = new PriorityQueue<>((a, b) -> a.score != b.score ? Float.compare(b.score, a.score) : Integer.compare(a.order, b.order));
        for (Sym x = head; x != null && x.next != null; x = x.next) offer(pq, x, x.next, pos);
        while (!pq.isEmpty()) {
            Bigram bg = pq.poll();
            Sym l = bg.left, r = bg.right;
            if (l.dead || r.dead || l.next != r || !(l.text + r.text).equals(bg.merged)) continue;
            l.text = bg.merged;
            r.dead = true;
            l.next = r.next;
            if (r.next != null) r.next.prev = l;
            if (l.prev != null) offer(pq, l.prev, l, pos);
            if (l.next != null) offer(pq, l, l.next, pos);
        }
        for (Sym x = head; x != null; x = x.next) {
            Integer id = ids.get(x.text);
            if (id != null) { out.add(id); continue; }
            for (byte b : x.text.getBytes(StandardCharsets.UTF_8)) {
                int t = byteToken[b & 0xFF];
                if (t < 0) t = ids.getOrDefault("<unk>", 0);
                out.add(t);
            }
        }
        return out.toArray();
    }

    private void offer(PriorityQueue<Bigram> pq, Sym l, Sym r, Map<Sym, Integer> pos) {
        String m = l.text + r.text;
        Integer id = ids.get(m);
        if (id != null) pq.add(new Bigram(l, r, scores[id], pos.get(l), m));
    }

    /** No special-token syntax is parsed for SentencePiece vocabularies: BOS/EOS are added by id. */
    @Override public int[] encodeWithSpecials(String text) { return encode(text); }

    @Override
    public byte[] bytes(int id) {
        if (id < 0 || id >= pieces.length || control[id]) return new byte[0];
        if (isByte[id]) return new byte[]{(byte) Integer.parseInt(pieces[id].substring(3, 5), 16)};
        return pieces[id].replace(space, " ").getBytes(StandardCharsets.UTF_8);
    }

    /** Decodes and drops the space prefix that encoding added. */
    @Override
    public String decode(int[] idsToDecode) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int id : idsToDecode) out.writeBytes(bytes(id));
        String s = new String(out.toByteArray(), StandardCharsets.UTF_8);
        return addPrefix && s.startsWith(" ") ? s.substring(1) : s;
    }

    @Override public boolean addsSpacePrefix() { return addPrefix; }

    @Override public String piece(int id) { return id >= 0 && id < pieces.length ? pieces[id] : null; }
    @Override public int id(String piece) { Integer i = ids.get(piece); return i == null ? -1 : i; }
    @Override public int vocabSize() { return pieces.length; }
    @Override public int bos() { return bos; }
    @Override public boolean isStop(int id) { return id == eos; }
    @Override public boolean isSpecial(int id) { return id >= 0 && id < control.length && control[id]; }

    @Override
    public String describe() {
        return name + " SentencePiece BPE (byte fallback), " + pieces.length + " tokens, BOS " + bos + ", EOS " + eos;
    }
}
