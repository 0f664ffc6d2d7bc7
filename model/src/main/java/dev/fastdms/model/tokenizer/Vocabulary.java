package dev.fastdms.model.tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The token table: piece and type by id, id by piece, and the ids with a role (BOS, EOS, stop tokens).
 * Pieces are stored as the vocabulary spells them (byte-level characters for BPE, U+2581 for SentencePiece spaces).
 */
public final class Vocabulary {
    private final String[] pieces;
    private final TokenType[] types;
    private final Map<String, Integer> ids;
    private final int bos, eos;
    private final boolean addsBos;
    private final int[] stops;
    private volatile SpecialTokenMatcher withControl, userDefinedOnly;

    /**
     * @param bos     the begin-of-sequence id, or -1
     * @param eos     the end-of-sequence id, or -1
     * @param stops   further ids that end a generation (end of turn); EOS is always one
     * @param addsBos whether a prompt for this model starts with BOS (Qwen's do not)
     */
    public Vocabulary(String[] pieces, TokenType[] types, int bos, int eos, Set<Integer> stops, boolean addsBos) {
        if (pieces.length != types.length) throw new IllegalArgumentException(pieces.length + " pieces but " + types.length + " types");
        this.pieces = pieces;
        this.types = types;
        this.ids = new HashMap<>(pieces.length * 2);
        // first id wins on duplicates, as in llama.cpp and HF
        for (int i = 0; i < pieces.length; i++) if (pieces[i] != null) ids.putIfAbsent(pieces[i], i);
        this.bos = checked(bos);
        this.eos = checked(eos);
        this.addsBos = addsBos && this.bos >= 0;
        TreeSet<Integer> s = new TreeSet<>();
        if (this.eos >= 0) s.add(this.eos);
        for (int id : stops) if (checked(id) >= 0) s.add(id);
        this.stops = s.stream().mapToInt(Integer::intValue).toArray();
    }

    private int checked(int id) { return id >= 0 && id < pieces.length ? id : -1; }

    public int size() { return pieces.length; }
    public String piece(int id) { return id >= 0 && id < pieces.length ? pieces[id] : null; }
    public TokenType type(int id) { return id >= 0 && id < types.length ? types[id] : TokenType.UNDEFINED; }

    /** The id of a piece spelled as stored, or -1. */
    public int id(String piece) {
        Integer i = piece == null ? null : ids.get(piece);
        return i == null ? -1 : i;
    }

    public int bos() { return bos; }
    public int eos() { return eos; }
    public boolean addsBos() { return addsBos; }
    public int[] stopTokens() { return stops.clone(); }
    public boolean isStop(int id) { return Arrays.binarySearch(stops, id) >= 0; }

    /**
     * Matcher for the added tokens that are cut out of text before the regular algorithm runs: user-defined tokens
     * always (as llama.cpp and HF do), control tokens only when special-token syntax is parsed.
     */
    SpecialTokenMatcher specialMatcher(boolean parseSpecial) {
        SpecialTokenMatcher m = parseSpecial ? withControl : userDefinedOnly;
        if (m == null) {
            List<Integer> chosen = new ArrayList<>();
            for (int i = 0; i < pieces.length; i++) {
                boolean pick = types[i] == TokenType.USER_DEFINED || (parseSpecial && types[i] == TokenType.CONTROL);
                if (pick && pieces[i] != null && !pieces[i].isEmpty()) chosen.add(i);
            }
            m = new SpecialTokenMatcher(this, chosen);
            if (parseSpecial) withControl = m; else userDefinedOnly = m;
        }
        return m;
    }
}
