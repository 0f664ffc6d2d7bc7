package dev.fastdms.model.format;

import dev.fastdms.model.ModelConfig;
import dev.fastdms.model.tensor.GgmlType;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.SplittableRandom;
import java.util.function.BiFunction;

/** Complete tiny GGUF models for tests: every canonical tensor of a config, F32, small random values. */
final class TinyGguf {
    private TinyGguf() {}

    static ModelConfig llama() {
        return new ModelConfig("llama", 32, 2, 4, 2, 8, 48, 40, 256, 1e-5f, 10000f, null, false, true, false, null);
    }

    static ModelConfig qwen3() {
        return new ModelConfig("qwen3", 32, 2, 4, 2, 16, 48, 40, 512, 1e-6f, 1000000f, null, true, false, true, null);
    }

    static GGUFWriter writer(ModelConfig c) { return writer(c, (name, shape) -> shape); }

    /** @param edit returns the shape to write for a tensor, or null to leave the tensor out */
    static GGUFWriter writer(ModelConfig c, BiFunction<String, long[], long[]> edit) {
        String a = c.architecture();
        GGUFWriter w = new GGUFWriter().put("general.architecture", a)
                .put(a + ".embedding_length", c.dim()).put(a + ".block_count", c.layers())
                .put(a + ".attention.head_count", c.heads()).put(a + ".attention.head_count_kv", c.kvHeads())
                .put(a + ".attention.key_length", c.headDim()).put(a + ".feed_forward_length", c.ffnDim())
                .put(a + ".context_length", c.contextLength()).put(a + ".attention.layer_norm_rms_epsilon", c.rmsEps())
                .put(a + ".rope.freq_base", c.ropeTheta());
        long seed = 1;
        for (var e : TensorLayout.required(c).entrySet()) {
            long[] shape = edit.apply(e.getKey(), e.getValue());
            if (shape != null) w.tensor(e.getKey(), GgmlType.F32, shape, f32(shape, seed++));
        }
        return w;
    }

    static byte[] f32(long[] shape, long seed) {
        long n = 1;
        for (long d : shape) n *= d;
        ByteBuffer b = ByteBuffer.allocate((int) n * 4).order(ByteOrder.LITTLE_ENDIAN);
        SplittableRandom r = new SplittableRandom(seed);
        for (long i = 0; i < n; i++) b.putFloat((float) (r.nextDouble() - 0.5) * 0.1f);
        return b.array();
    }
}
