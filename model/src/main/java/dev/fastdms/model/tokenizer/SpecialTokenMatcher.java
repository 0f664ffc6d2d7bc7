package dev.fastdms.model.tokenizer;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Cuts added tokens (e.g. {@code <|eot_id|>}, {@code <think>}) out of text: the leftmost occurrence wins, the longest
 * token on ties. A token's first character filters candidate positions, so plain text is scanned at memory speed.
 */
final class SpecialTokenMatcher {
    /** A stretch of text to tokenize normally, or (text == null) one added token. */
    record Segment(String text, int token) {}

    private final Map<Character, int[]> byFirstChar = new HashMap<>();
    private final String[] pieces;
    private final boolean[] firstChar = new boolean[Character.MAX_VALUE + 1];

    SpecialTokenMatcher(Vocabulary vocab, List<Integer> ids) {
        this.pieces = new String[vocab.size()];
        Map<Character, List<Integer>> groups = new HashMap<>();
        for (int id : ids) {
            String p = vocab.piece(id);
            pieces[id] = p;
            groups.computeIfAbsent(p.charAt(0), c -> new ArrayList<>()).add(id);
            firstChar[p.charAt(0)] = true;
        }
        groups.forEach((c, list) -> {
            list.sort(Comparator.comparingInt((Integer id) -> -pieces[id].length()));
            byFirstChar.put(c, list.stream().mapToInt(Integer::intValue).toArray());
        });
    }

    boolean isEmpty() { return byFirstChar.isEmpty(); }

    List<Segment> split(String text) {
        List<Segment> out = new ArrayList<>();
        int last = 0;
        for (int i = 0; i < text.length(); i++) {
            if (!firstChar[text.charAt(i)]) continue;
            for (int id : byFirstChar.get(text.charAt(i))) {
                if (text.startsWith(pieces[id], i)) {
                    if (i > last) out.add(new Segment(text.substring(last, i), -1));
                    out.add(new Segment(null, id));
                    last = i + pieces[id].length();
                    i = last - 1;
                    break;
                }
            }
        }
        if (last < text.length()) out.add(new Segment(text.substring(last), -1));
        return out;
    }
}
