package dev.fastdms.model.format;

import dev.fastdms.model.ModelConfig;
import dev.fastdms.model.tensor.GgmlType;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Stream;

/**
 * karpathy/llama2.c checkpoints: a header of seven int32 (dim, hidden, layers, heads, kv heads, vocab — negative when
 * the classifier is not shared — and sequence length) followed by fp32 arrays, each stacked over layers. Exposed as
 * memory-mapped F32 slices under the canonical names. llama2.c rotates adjacent pairs, theta 10000, eps 1e-5.
 */
final class Llama2c {
    private Llama2c() {}

    static ModelFile open(Path path) {
        Arena arena = Arena.ofShared();
        try {
            MemorySegment f = Mapped.map(path, arena);
            if (f.byteSize() < 28) throw new ModelFormatException(path + ": too short for a llama2.c checkpoint (and not GGUF)");
            ValueLayout.OfInt I = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
            int dim = f.get(I, 0), hidden = f.get(I, 4), layers = f.get(I, 8), heads = f.get(I, 12), kvHeads = f.get(I, 16),
                    vocabRaw = f.get(I, 20), seq = f.get(I, 24);
            boolean shared = vocabRaw > 0;
            int vocab = Math.abs(vocabRaw);
            if (dim <= 0 || hidden <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || vocab <= 0 || seq <= 0
                    || dim > 65536 || hidden > 1 << 20 || layers > 1024 || heads > 1024 || vocab > 1 << 22 || seq > 1 << 22
                    || dim % heads != 0 || heads % kvHeads != 0) {
                throw new ModelFormatException(path + ": not a model file this engine knows (no GGUF magic, and the llama2.c header "
                        + "[" + dim + ", " + hidden + ", " + layers + ", " + heads + ", " + kvHeads + ", " + vocabRaw + ", " + seq + "] is not plausible)");
            }
            int hs = dim / heads, kvDim = kvHeads * hs;
            long[] off = {28};
            Map<String, RawTensor> t = new LinkedHashMap<>();
            class Cut {
                RawTensor take(String name, long... shape) {
                    long n = 1;
                    for (long d : shape) n *= d;
                    long bytes = n * 4;
                    if (off[0] + bytes > f.byteSize()) {
                        throw new ModelFormatException(path + ": truncated llama2.c checkpoint (" + name + " needs bytes up to "
                                + (off[0] + bytes) + ", file has " + f.byteSize() + ")");
                    }
                    RawTensor r = new RawTensor(name, GgmlType.F32, shape, f.asSlice(off[0], bytes));
                    off[0] += bytes;
                    return r;
                }
                void perLayer(String suffix, long rows, long cols) {
                    for (int l = 0; l < layers; l++) {
                        String name = "blk." + l + "." + suffix;
                        t.put(name, cols == 0 ? take(name, rows) : take(name, rows, cols));
                    }
                }
            }
            Cut c = new Cut();
            t.put("token_embd.weight", c.take("token_embd.weight", vocab, dim));
            c.perLayer("attn_norm.weight", dim, 0);
            c.perLayer("attn_q.weight", dim, dim);
            c.perLayer("attn_k.weight", kvDim, dim);
            c.perLayer("attn_v.weight", kvDim, dim);
            c.perLayer("attn_output.weight", dim, dim);
            c.perLayer("ffn_norm.weight", dim, 0);
            c.perLayer("ffn_gate.weight", hidden, dim);
            c.perLayer("ffn_down.weight", dim, hidden);
            c.perLayer("ffn_up.weight", hidden, dim);
            t.put("output_norm.weight", c.take("output_norm.weight", dim));
            c.take("freq_cis_real", seq, hs / 2); // precomputed RoPE tables: we compute our own
            c.take("freq_cis_imag", seq, hs / 2);
            if (!shared) t.put("output.weight", c.take("output.weight", vocab, dim));
            ModelConfig cfg = new ModelConfig("llama", dim, layers, heads, kvHeads, hs, hidden, vocab, seq, 1e-5f, 10000f, null,
                    false, shared, false, null);
            return new ModelFile("llama2c", path, cfg, t, Map.of(), findTokenizer(path), arena::close);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** tokenizer.bin, else a tok*.bin, in the checkpoint's folder. */
    static Path findTokenizer(Path model) {
        Path dir = model.toAbsolutePath().getParent();
        if (dir == null) return null;
        Path std = dir.resolve("tokenizer.bin");
        if (Files.isRegularFile(std)) return std;
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> {
                String n = p.getFileName().toString();
                return n.endsWith(".bin") && n.contains("tok") && !p.equals(model);
            }).sorted().findFirst().orElse(null);
        } catch (IOException e) {
            return null;
        }
    }
}
