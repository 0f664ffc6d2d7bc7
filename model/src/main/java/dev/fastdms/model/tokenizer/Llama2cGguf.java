package dev.fastdms.model.tokenizer;

import dev.fastdms.model.format.ModelFormatException;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A llama2.c tokenizer.bin as GGUF tokenizer metadata ({@code tokenizer.ggml.*}, SentencePiece "llama" model), so a
 * checkpoint converted from llama2.c carries its tokenizer: spaces become U+2581 as in SentencePiece vocabularies,
 * the specials get their usual names (llama2.c stores BOS as "\n&lt;s&gt;\n"), scores and byte tokens stay. This is
 * what llama.cpp's converter wrote for {@code stories260K-f32.gguf}, key for key.
 */
public final class Llama2cGguf {
    private Llama2cGguf() {}

    public static Map<String, Object> metadata(Path tokenizerBin, int vocabSize) {
        if (!(Tokenizers.fromLlama2c(tokenizerBin) instanceof SentencePieceBpe t)) throw new IllegalStateException("llama2.c tokenizers are SentencePiece");
        Vocabulary v = t.vocabulary();
        if (v.size() > vocabSize) throw new ModelFormatException(tokenizerBin + ": " + v.size() + " tokens do not fit the model's vocabulary of " + vocabSize);
        String[] tokens = new String[vocabSize];
        float[] scores = new float[vocabSize];
        int[] types = new int[vocabSize];
        int unk = -1;
        for (int i = 0; i < vocabSize; i++) {
            TokenType type = i < v.size() ? v.type(i) : TokenType.UNUSED;
            if (type == TokenType.UNKNOWN && unk < 0) unk = i;
            tokens[i] = i >= v.size() ? "<unused" + i + ">" : type == TokenType.UNKNOWN ? "<unk>" : i == v.bos() ? "<s>" : i == v.eos() ? "</s>"
                    : v.piece(i).replace(' ', '\u2581');
            scores[i] = i < v.size() ? t.score(i) : 0f;
            types[i] = type.code;
        }
        Map<String, Object> md = new LinkedHashMap<>();
        md.put("tokenizer.ggml.model", "llama");
        md.put("tokenizer.ggml.tokens", tokens);
        md.put("tokenizer.ggml.scores", scores);
        md.put("tokenizer.ggml.token_type", types);
        if (v.bos() >= 0) md.put("tokenizer.ggml.bos_token_id", v.bos());
        if (v.eos() >= 0) md.put("tokenizer.ggml.eos_token_id", v.eos());
        if (unk >= 0) md.put("tokenizer.ggml.unknown_token_id", unk);
        return md;
    }
}
