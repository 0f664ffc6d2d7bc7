package dev.fastdms.model.eval;

import dev.fastdms.model.Engine;
import dev.fastdms.model.tokenizer.Tokenizer;

import java.util.Arrays;

/**
 * Whether two models read token ids alike, so one can be the other's full-cache reference. Tokenizers are compared by
 * the bytes each id stands for, not by stored pieces: a llama2.c vocabulary spells spaces " " and BOS "\n&lt;s&gt;\n"
 * where its GGUF conversion (and a retrofit written from it) says U+2581 and "&lt;s&gt;".
 */
public final class SameVocabulary {
    private SameVocabulary() {}

    /** Refuses (one line) models whose vocabularies differ; a model without a tokenizer is compared by size alone. */
    public static void require(Engine model, Engine reference) {
        int v = model.config().vocabSize(), r = reference.config().vocabSize();
        if (v != r) throw new IllegalArgumentException("the reference model has a vocabulary of " + r + " tokens, the model " + v + ": they do not share a tokenizer");
        Tokenizer a = model.tokenizer(), b = reference.tokenizer();
        if (a == null || b == null) return;
        if (a.vocabSize() != b.vocabSize()) throw new IllegalArgumentException("the reference model's tokenizer has " + b.vocabSize() + " tokens, the model's " + a.vocabSize());
        if (a.bos() != b.bos() || a.eos() != b.eos()) {
            throw new IllegalArgumentException("the reference model's tokenizer has BOS/EOS " + b.bos() + "/" + b.eos() + ", the model's " + a.bos() + "/" + a.eos());
        }
        for (int id = 0; id < a.vocabSize(); id++) {
            if (!Arrays.equals(a.bytes(id), b.bytes(id)) || a.isSpecial(id) != b.isSpecial(id)) {
                throw new IllegalArgumentException("the reference model's tokenizer differs from the model's at token " + id
                        + " (" + printable(b.piece(id)) + " vs " + printable(a.piece(id)) + "): they do not share a tokenizer");
            }
        }
    }

    private static String printable(String piece) { return piece == null ? "none" : "'" + piece.replace("\n", "\\n") + "'"; }
}
