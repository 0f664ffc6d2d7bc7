package dev.fastdms.model.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Byte-level BPE (GPT-2 / tiktoken family: Llama 3, Qwen). Text is split by a pre-tokenizer regex; each piece's UTF-8
 * bytes are mapped to printable characters (GPT-2's byte-to-unicode table) and merged pairwise by merge rank.
 * With {@code ignoreMerges} (Llama 3) a piece found whole in the vocabulary is taken as is.
 */
public final class ByteLevelBpe implements Tokenizer {
    /** Llama 3's pre-tokenizer: contractions, words, 1-3 digit groups, punctuation runs, newlines, spaces. */
    public static final String LLAMA3_PATTERN =
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    /** Qwen2/3's: the same with single digits. */
    public static final String QWEN2_PATTERN =
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

    private static final char[] BYTE_TO_CHAR = new char[256];
    private static final int[] CHAR_TO_BYTE = new int[512];

    static {
        // GPT-2: printable latin-1 bytes map to themselves, the rest to 256, 257, ... in byte order.
        Arrays.fill(CHAR_TO_BYTE, -1);
        int n = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            char c = printable ? (char) b : (char) (256 + n++);
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = b;
        }
    }

    private final String name;
    private final String[] pieces;
    private final Map<String, Integer> ids;
    private final Map<Long, Integer> mergeRank;  // (left id, right id) -> rank
    private final Map<Long, Integer> mergeResult; // (left id, right id) -> merged id
    private final boolean[] special;
    private final Pattern splitter;
    private final Pattern specialSplitter;
    private final boolean ignoreMerges;
    private final int bos;
    private final Set<Integer> stops;
    private final byte[][] bytes;
    private final Map<String, int[]> cache = new ConcurrentHashMap<>();
    private final String[] mergeList;

    /**
     * @param pieces   token strings by id in byte-level form (specials as their literal text)
     * @param special  which ids are control tokens (split out before the regex when parsing specials)
     * @param merges   merge rules "left right" in rank order
     */
    public ByteLevelBpe(String name, String[] pieces, boolean[] special, List<String> merges, String pattern,
                        boolean ignoreMerges, int bos, Set<Integer> stops) {
        this.name = name;
        this.pieces = pieces;
        this.special = special;
        this.ignoreMerges = ignoreMerges;
        this.bos = bos;
        this.stops = stops;
        this.ids = new HashMap<>(pieces.length * 2);
        for (int i = 0; i < pieces.length; i++) if (pieces[i] != null) ids.putIfAbsent(pieces[i], i);
        this.mergeList = merges.toArray(new String[0]);
        this.mergeRank = new HashMap<>(merges.size() * 2);
        this.mergeResult = new HashMap<>(merges.size() * 2);
        for (int r = 0; r < merges.size(); r++) {
            String m = merges.get(r);
            int sp = m.indexOf(' ', 1);
            if (sp < 0) continue;
            Integer a = ids.get(m.substring(0, sp)), b = ids.get(m.substring(sp + 1)), ab = ids.get(m.substring(0, sp) + m.substring(sp + 1));
            if (a == null || b == null || ab == null) continue;
            long key = pair(a, b);
            if (!mergeRank.containsKey(key)) { mergeRank.put(key, r); mergeResult.put(key, ab); }
        }
        this.splitter = Pattern.compile(pattern, Pattern.UNICODE_CHARACTER_CLASS);
        List<String> specials = new ArrayList<>();
        for (int i = 0; i < pieces.length; i++) if (special[i] && pieces[i] != null && !pieces[i].isEmpty()) specials.add(pieces[i]);
        specials.sort((x, y) -> y.length() - x.length()); // longest first
        this.specialSplitter = specials.isEmpty() ? null
                : Pattern.compile(String.join("|", specials.stream().map(Pattern::quote).toList()));
        this.bytes = new byte[pieces.length][];
        for (int i = 0; i < pieces.length; i++) bytes[i] = special[i] || pieces[i] == null ? new byte[0] : toBytes(pieces[i]);
    }

    private static long pair(int a, int b) { return ((long) a << 32) | (b & 0xFFFFFFFFL); }

    private static byte[] toBytes(String piece) {
        byte[] out = new byte[piece.length()];
        int n = 0;
        for (int i = 0; i < piece.length(); i++) {
            char c = piece.charAt(i);
            int b = c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
            if (b < 0) return piece.getBytes(StandardCharsets.UTF_8); // not byte-level (an added plain token)
            out[n++] = (byte) b;
        }
        return Arrays.copyOf(out, n);
    }

    @Override
    public int[] encode(String text) {
        IntList out = new IntList();
        encodeOrdinary(text, out);
        return out.toArray();
    }

    @Override
    public int[] encodeWithSpecials(String text) {
        if (specialSplitter == null) return encode(text);
        IntList out = new IntList();
        Matcher m = specialSplitter.matcher(text);
        int last = 0;
        while (m.find()) {
            encodeOrdinary(text.substring(last, m.start()), out);
            out.add(ids.get(m.group()));
            last = m.end();
        }
        encodeOrdinary(text.substring(last), out);
        return out.toArray();
    }

    private void encodeOrdinary(String text, IntList out) {
        if (text.isEmpty()) return;
        Matcher m = splitter.matcher(text);
        while (m.find()) {
            for (int id : cache.computeIfAbsent(m.group(), this::encodePiece)) out.add(id);
        }
    }

    private int[] encodePiece(String piece) {
        byte[] utf8 = piece.getBytes(StandardCharsets.UTF_8);
        StringBuilder sb = new StringBuilder(utf8.length);
        for (byte b : utf8) sb.append(BYTE_TO_CHAR[b & 0xFF]);
        String mapped = sb.toString();
        if (ignoreMerges) {
            Integer whole = ids.get(mapped);
            if (whole != null) return new int[]{whole};
        }
        int[] sym = new int[mapped.length()];
        for (int i = 0; i < sym.length; i++) {
            Integer id = ids.get(String.valueOf(mapped.charAt(i)));
            if (id == null) throw new IllegalStateException(name + ": vocabulary lacks the byte token for 0x" + Integer.toHexString(utf8[i] & 0xFF));
            sym[i] = id;
        }
        int n = sym.length;
        while (n > 1) {
            int best = -1, bestRank = Integer.MAX_VALUE;
            for (int i = 0; i + 1 < n; i++) {
                Integer r = mergeRank.get(pair(sym[i], sym[i + 1]));
                if (r != null && r < bestRank) { bestRank = r; best = i; }
            }
            if (best < 0) break;
            sym[best] = mergeResult.get(pair(sym[best], sym[best + 1]));
            System.arraycopy(sym, best + 2, sym, best + 1, n - best - 2);
            n--;
        }
        return Arrays.copyOf(sym, n);
    }

    /** Merge rules in rank order ("left right"). */
    public String[] merges() { return mergeList.clone(); }

    /** The lowest-numbered stop token (the EOS to record in metadata), or -1. */
    public int firstStop() { return stops.stream().mapToInt(Integer::intValue).min().orElse(-1); }

    @Override public byte[] bytes(int id) { return id >= 0 && id < bytes.length ? bytes[id] : new byte[0]; }
    @Override public String piece(int id) { return id >= 0 && id < pieces.length ? pieces[id] : null; }
    @Override public int id(String piece) { Integer i = ids.get(piece); return i == null ? -1 : i; }
    @Override public int vocabSize() { return pieces.length; }
    @Override public int bos() { return bos; }
    @Override public boolean isStop(int id) { return stops.contains(id); }
    @Override public boolean isSpecial(int id) { return id >= 0 && id < special.length && special[id]; }

    @Override
    public String describe() {
        return name + " byte-level BPE, " + pieces.length + " tokens, " + mergeRank.size() + " merges, BOS " + bos
                + (bos >= 0 ? " " + pieces[bos] : "") + ", stop " + stops;
    }
}
