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
 * karpathy/llama2.c checkpoints, fp32, exposed as memory-mapped F32 slices under the canonical names. llama2.c
 * rotates adjacent pairs, theta 10000, eps 1e-5.
 *
 * <p>Legacy files (export version 0) start with seven int32 (dim, hidden, layers, heads, kv heads, vocab — negative
 * when the classifier is not shared — and sequence length), then token embedding, per-layer arrays stacked over
 * layers (rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3), rms_final, two RoPE tables [seq, headDim/2] and the
 * classifier when unshared. Version 1 files start with magic "ak42", version, the same seven ints (vocab positive),
 * a shared-classifier byte, zero padding to 256 bytes, then norms first (rms_att, rms_ffn, rms_final), embedding,
 * wq, wk, wv, wo, w1, w2, w3, classifier when unshared, and no RoPE tables.
 */
final class Llama2c {
    private Llama2c() {}

    static final int MAGIC_V1 = 0x616b3432; // "ak42" read little-endian

    static ModelFile open(Path path) {
        Arena arena = Arena.ofShared();
        try {
            MemorySegment f = Mapped.map(path, arena);
            if (f.byteSize() < 28) throw new ModelFormatException(path + ": too short for a llama2.c checkpoint (and not GGUF)");
            ValueLayout.OfInt I = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
            boolean v1 = f.get(I, 0) == MAGIC_V1;
            if (v1) {
                if (f.byteSize() < 256) throw new ModelFormatException(path + ": too short for a llama2.c version 1 checkpoint");
                int version = f.get(I, 4);
                if (version != 1) {
                    throw new ModelFormatException(path + ": llama2.c export version " + version + " is not supported (legacy and version 1 fp32 files are)");
                }
            }
            long h = v1 ? 8 : 0;
            int dim = f.get(I, h), hidden = f.get(I, h + 4), layers = f.get(I, h + 8), heads = f.get(I, h + 12), kvHeads = f.get(I, h + 16),
                    vocabRaw = f.get(I, h + 20), seq = f.get(I, h + 24);
            boolean shared = v1 ? f.get(ValueLayout.JAVA_BYTE, 36) != 0 : vocabRaw > 0;
            int vocab = Math.abs(vocabRaw);
            if (dim <= 0 || hidden <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || vocab <= 0 || seq <= 0
                    || dim > 65536 || hidden > 1 << 20 || layers > 1024 || heads > 1024 || vocab > 1 << 22 || seq > 1 << 22
                    || dim % heads != 0 || heads % kvHeads != 0) {
                throw new ModelFormatException(path + ": not a model file this engine knows (no GGUF magic, and the llama2.c header "
                        + "[" + dim + ", " + hidden + ", " + layers + ", " + heads + ", " + kvHeads + ", " + vocabRaw + ", " + seq + "] is not plausible)");
            }
            int hs = dim / heads, kvDim = kvHeads * hs;
            long[] off = {v1 ? 256 : 28};
            Map<String, RawTensor> t = new LinkedHashMap<>();
            class Cut {
                RawTensor take(String name, long... shape) {
                    long n = 1;
                    for (long d : shape) n *= d; // header limits keep this far from overflow
                    long bytes = n * 4;
                    if (off[0] + bytes > f.byteSize()) {
                        throw new ModelFormatException(path + ": truncated llama2.c checkpoint (" + name + " needs bytes up to "
                                + (off[0] + bytes) + ", file has " + f.byteSize() + ")");
                    }
                    RawTensor r = new RawTensor(name, GgmlType.F32, shape, f.asSlice(off[0], bytes));
                    off[0] += bytes;
                    return r;
                }
                void one(String name, long... shape) { t.put(name, take(name, shape)); }
                void perLayer(String suffix, long... shape) {
                    for (int l = 0; l < layers; l++) one("blk." + l + "." + suffix, shape);
                }
            }
            Cut c = new Cut();
            if (v1) {
                c.perLayer("attn_norm.weight", dim);
                c.perLayer("ffn_norm.weight", dim);
                c.one("output_norm.weight", dim);
                c.one("token_embd.weight", vocab, dim);
            } else {
                c.one("token_embd.weight", vocab, dim);
                c.perLayer("attn_norm.weight", dim);
            }
            c.perLayer("attn_q.weight", dim, dim);
            c.perLayer("attn_k.weight", kvDim, dim);
            c.perLayer("attn_v.weight", kvDim, dim);
            c.perLayer("attn_output.weight", dim, dim);
            if (!v1) c.perLayer("ffn_norm.weight", dim);
            c.perLayer("ffn_gate.weight", hidden, dim);
            c.perLayer("ffn_down.weight", dim, hidden);
            c.perLayer("ffn_up.weight", hidden, dim);
            if (!v1) {
                c.one("output_norm.weight", dim);
                c.take("freq_cis_real", seq, hs / 2); // precomputed RoPE tables: we compute our own
                c.take("freq_cis_imag", seq, hs / 2);
            }
            if (!shared) c.one("output.weight", vocab, dim);
            ModelConfig cfg = new ModelConfig("llama", dim, layers, heads, kvHeads, hs, hidden, vocab, seq, 1e-5f, 10000f, null,
                    false, shared, false, null);
            return new ModelFile("llama2c", path, cfg, t, Map.of(), findTokenizer(path), arena::close);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** tokenizer.bin, else MODEL-tok*.bin (a tokenizer named after its checkpoint), else a tok*.bin, in the checkpoint's folder. */
    static Path findTokenizer(Path model) {
        Path dir = model.toAbsolutePath().getParent();
        if (dir == null) return null;
        Path std = dir.resolve("tokenizer.bin");
        if (Files.isRegularFile(std)) return std;
        String name = model.getFileName().toString();
        String own = (name.endsWith(".bin") ? name.substring(0, name.length() - 4) : name) + "-tok";
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> {
                String n = p.getFileName().toString();
                return n.endsWith(".bin") && (n.startsWith("tok") || n.startsWith(own)) && !n.equals(name);
            }).sorted(java.util.Comparator.comparing((Path p) -> !p.getFileName().toString().startsWith(own)).thenComparing(p -> p)).findFirst().orElse(null);
        } catch (IOException e) {
            return null;
        }
    }
}
