package dev.fastdms.cli;

import java.util.Arrays;

/**
 * A token stream cut in two: training tokens and the last {@code fraction} of the stream, held out (never trained on),
 * so a retrofit can be scored on text it has not seen. A tail, not random windows: adjacent windows overlap in
 * content, a tail does not.
 */
record HeldOut(int[] train, int[] heldOut) {
    static HeldOut last(int[] ids, double fraction) {
        int n = (int) Math.floor(ids.length * fraction);
        return new HeldOut(Arrays.copyOf(ids, ids.length - n), Arrays.copyOfRange(ids, ids.length - n, ids.length));
    }
}
