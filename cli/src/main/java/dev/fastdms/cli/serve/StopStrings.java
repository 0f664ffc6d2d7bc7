package dev.fastdms.cli.serve;

import java.util.List;

/**
 * The request's {@code stop} strings over streamed text: text is released only once no stop string can begin in
 * it, so a client never sees part of a stop string; after a match nothing more is released.
 */
final class StopStrings {
    private final List<String> stops;
    private final int hold;               // characters kept back: the longest stop string minus one
    private final StringBuilder pending = new StringBuilder();
    private boolean matched;

    StopStrings(List<String> stops) {
        this.stops = stops;
        int h = 0;
        for (String s : stops) h = Math.max(h, s.length() - 1);
        this.hold = h;
    }

    boolean matched() { return matched; }

    /** Adds generated text; returns what can be sent now (empty after a match). */
    String feed(String text) {
        if (matched) return "";
        pending.append(text);
        int cut = -1;
        for (String s : stops) {
            int i = pending.indexOf(s);
            if (i >= 0 && (cut < 0 || i < cut)) cut = i;
        }
        if (cut >= 0) {
            matched = true;
            String out = pending.substring(0, cut);
            pending.setLength(0);
            return out;
        }
        int release = Math.max(0, pending.length() - hold);
        // never split a surrogate pair
        if (release > 0 && release < pending.length() && Character.isHighSurrogate(pending.charAt(release - 1))) release--;
        String out = pending.substring(0, release);
        pending.delete(0, release);
        return out;
    }

    /** The text still held back (the generation ended without a match). */
    String flush() {
        String out = matched ? "" : pending.toString();
        pending.setLength(0);
        return out;
    }
}
