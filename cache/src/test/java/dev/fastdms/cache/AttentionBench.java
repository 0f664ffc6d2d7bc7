package dev.fastdms.cache;

import java.util.SplittableRandom;

/**
 * Decode-attention throughput of {@link HeadKv#attend} on one thread (not a unit test): a model shape of 16 layers,
 * 8 KV heads, head dimension 64, 4 query heads per KV head, with every head holding {@code ctx} live tokens (no
 * eviction: the cost DMS divides by its CR). One "step" is attention of one new token over every layer and head.
 * Prints, per dtype and context, the KV bytes read per step (rows and their scales), GB/s of KV read and steps/s
 * (the tokens/s attention alone would allow).
 *
 * <pre>
 * ./mvnw -q -B -pl cache test-compile
 * $JAVA_HOME/bin/java --add-modules jdk.incubator.vector -Xmx8g -cp cache/target/classes:cache/target/test-classes \
 *     dev.fastdms.cache.AttentionBench [contexts=1024,8192,32768] [dtypes=F32,F16,BF16,FP8_E4M3,Q8] [seconds=2]
 * </pre>
 */
public final class AttentionBench {
    public static void main(String[] args) {
        int layers = 16, kvHeads = 8, dim = 64, group = 4;
        String ctxArg = "1024,8192,32768", dtArg = "F32,F16,BF16,FP8_E4M3,Q8";
        double seconds = 2;
        for (String a : args) {
            if (a.startsWith("contexts=")) ctxArg = a.substring(9);
            else if (a.startsWith("dtypes=")) dtArg = a.substring(7);
            else if (a.startsWith("seconds=")) seconds = Double.parseDouble(a.substring(8));
            else throw new IllegalArgumentException("unknown argument " + a);
        }
        System.out.printf("layers %d, kv heads %d, head dim %d, group %d, one thread%n", layers, kvHeads, dim, group);
        System.out.printf("%-9s %7s %12s %10s %10s %12s %10s%n", "dtype", "ctx", "KV MiB", "ms/step", "GB/s", "steps/s", "ns/token");
        for (String dt : dtArg.split(",")) {
            KvDtype t = KvDtype.valueOf(dt.trim());
            for (String c : ctxArg.split(",")) run(t, Integer.parseInt(c.trim()), layers, kvHeads, dim, group, seconds);
        }
    }

    private static boolean firstRun = true;

    static void run(KvDtype t, int ctx, int layers, int kvHeads, int dim, int group, double seconds) {
        CompactKvCache cache = new CompactKvCache(layers, kvHeads, dim, t, 0);
        SplittableRandom r = new SplittableRandom(1);
        int pool = 512;
        float[] rows = new float[pool * dim];
        for (int i = 0; i < rows.length; i++) rows[i] = (float) r.nextGaussian();
        for (int l = 0; l < layers; l++) {
            for (int g = 0; g < kvHeads; g++) {
                HeadKv h = cache.head(l, g);
                int off = r.nextInt(pool);
                for (int p = 0; p < ctx; p++) h.append(p, rows, (p + off) % pool * dim, rows, (p * 7 + off) % pool * dim);
            }
        }
        float[] q = new float[group * dim], out = new float[group * dim];
        for (int i = 0; i < q.length; i++) q[i] = (float) r.nextGaussian();
        float[] scratch = new float[cache.head(0, 0).scratchSize(group)];
        float scale = (float) (1 / Math.sqrt(dim));
        long rowBytes = KvStore.of(t, dim, 1).rowBytes();
        long bytesPerStep = 2L * rowBytes * ctx * layers * kvHeads;
        // warm up (JIT) then time whole steps for about `seconds`
        // the first configuration also pays for compiling the kernels: warm it up longer
        long warmEnd = System.nanoTime() + (long) ((firstRun ? 4.0 : Math.min(1.0, seconds / 2)) * 1e9);
        firstRun = false;
        while (System.nanoTime() < warmEnd) step(cache, layers, kvHeads, q, group, ctx, scale, out, scratch);
        int steps = 0;
        long t0 = System.nanoTime(), end = t0 + (long) (seconds * 1e9);
        do {
            step(cache, layers, kvHeads, q, group, ctx, scale, out, scratch);
            steps++;
        } while (System.nanoTime() < end);
        double sec = (System.nanoTime() - t0) / 1e9 / steps;
        System.out.printf("%-9s %7d %12.1f %10.3f %10.2f %12.1f %10.3f%n", t, ctx, bytesPerStep / 1048576.0, sec * 1e3,
                bytesPerStep / sec / 1e9, 1 / sec, sec * 1e9 / ((double) ctx * layers * kvHeads));
    }

    static void step(CompactKvCache cache, int layers, int kvHeads, float[] q, int group, int ctx, float scale, float[] out, float[] scratch) {
        for (int l = 0; l < layers; l++) for (int g = 0; g < kvHeads; g++) cache.head(l, g).attend(q, 0, group, ctx - 1, scale, out, 0, scratch);
    }
}
