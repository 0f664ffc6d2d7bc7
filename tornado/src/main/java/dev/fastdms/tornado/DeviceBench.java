package dev.fastdms.tornado;

import dev.fastdms.cache.DmsConfig;
import dev.fastdms.cache.KvDtype;
import dev.fastdms.model.ModelConfig;
import dev.fastdms.model.Sequence;
import dev.fastdms.model.Weights;
import dev.fastdms.model.format.ModelFile;
import dev.fastdms.model.format.ModelLoader;
import uk.ac.manchester.tornado.api.GridScheduler;
import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.WorkerGrid1D;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Decode speed and KV memory on a TornadoVM device, dense vs DMS, beside the memory-bandwidth roofline:
 * {@code java @tornado-argfile -cp fastdms.jar dev.fastdms.tornado.DeviceBench MODEL [opencl|ptx] [device] [ctx,ctx]
 * [c,c] [gen] [--kv dense|dms|both] [--rows N] [--local N] [--profile]}.
 * Each sequence is prefilled with ctx - gen random tokens, then all sequences decode {@code gen} tokens together
 * (greedy on the device). DMS rows use the benchmark's forced eviction (90% of tokens flagged, window 256; random
 * weights make no real decisions) and FP8 keys/values; dense rows keep F32 keys/values and never evict. The roofline
 * is (weight bytes + KV bytes read per step) / measured device bandwidth. Options: which rows to run (default both),
 * rows per prefill step (64), work-group size (128), and {@code --profile} for kernel time per decode step.
 */
public final class DeviceBench {
    /** The options after the positional arguments. */
    record Options(String kv, int rows, int local, boolean profile) {
        static Options parse(List<String> args) {
            String kv = "both";
            int rows = 64, local = 128;
            boolean profile = false;
            for (int i = 0; i < args.size(); i++) {
                switch (args.get(i)) {
                    case "--kv" -> kv = args.get(++i);
                    case "--rows" -> rows = Integer.parseInt(args.get(++i));
                    case "--local" -> local = Integer.parseInt(args.get(++i));
                    case "--profile" -> profile = true;
                    default -> throw new IllegalArgumentException("unknown option " + args.get(i) + " (--kv dense|dms|both, --rows N, --local N, --profile)");
                }
            }
            if (!List.of("dense", "dms", "both").contains(kv)) throw new IllegalArgumentException("--kv dense|dms|both, got " + kv);
            return new Options(kv, rows, local, profile);
        }
    }

    static void copy(KernelContext kc, FloatArray a, FloatArray b) {
        int i = kc.globalIdx;
        b.set(i, a.get(i));
    }

    /** Device read+write bandwidth from a 1 GiB copy kernel, bytes per second. */
    static double bandwidth(String backend, int device) throws Exception {
        int n = 1 << 28;
        FloatArray a = new FloatArray(n), b = new FloatArray(n);
        KernelContext kc = new KernelContext();
        TaskGraph g = new TaskGraph("bw").transferToDevice(DataTransferMode.FIRST_EXECUTION, a, b).task("copy", DeviceBench::copy, kc, a, b);
        WorkerGrid1D w = new WorkerGrid1D(n);
        w.setLocalWork(256, 1, 1);
        try (TornadoExecutionPlan p = new TornadoExecutionPlan(g.snapshot())) {
            p.withGridScheduler(new GridScheduler("bw.copy", w)).withDevice(Devices.pick(backend, device));
            p.execute();
            p.execute();
            int reps = 10;
            long t0 = System.nanoTime();
            for (int i = 0; i < reps; i++) p.execute();
            double s = (System.nanoTime() - t0) / 1e9;
            return 2.0 * 4 * n * reps / s;
        }
    }

    public static void main(String[] all) throws Exception {
        int split = 0;
        while (split < all.length && !all[split].startsWith("--")) split++;
        String[] args = java.util.Arrays.copyOf(all, split);
        Options o = Options.parse(List.of(all).subList(split, all.length));
        Path model = Path.of(args[0]);
        String backend = args.length > 1 ? args[1] : "opencl";
        int device = args.length > 2 ? Integer.parseInt(args[2]) : 0;
        int[] ctxs = args.length > 3 ? ints(args[3]) : new int[]{1024, 8192};
        int[] batches = args.length > 4 ? ints(args[4]) : new int[]{1, 8};
        int gen = args.length > 5 ? Integer.parseInt(args[5]) : 32;
        int rows = o.rows();
        double fraction = 0.9;
        int window = 256;
        double bw = bandwidth(backend, device);
        System.out.printf(Locale.ROOT, "device %s: copy bandwidth %.0f GB/s (read + write)%n",
                Devices.pick(backend, device).getPhysicalDevice().getDeviceName(), bw / 1e9);
        try (ModelFile mf = ModelLoader.open(model)) {
            ModelConfig c0 = mf.config();
            Weights w = new Weights(mf);
            System.out.printf(Locale.ROOT, "%-6s %2s %-5s %10s %10s %9s %10s %10s %9s %9s%n", "ctx", "c", "kv", "KV bytes", "dense bf16",
                    "prefill/s", "decode t/s", "roofline", "% roof", "CR");
            for (int ctx : ctxs) {
                ModelConfig c = c0.withContextLength(ctx);
                for (int batch : batches) {
                    for (boolean dms : new boolean[]{false, true}) {
                        if (o.kv().equals(dms ? "dense" : "dms")) continue;
                        int slots = dms ? Math.min(ctx, (int) ((1 - fraction) * ctx * 1.3) + window + rows + 256) : ctx;
                        KvDtype kv = dms ? KvDtype.FP8_E4M3 : KvDtype.F32;
                        TornadoForward f = new TornadoForward(backend, Devices.pick(backend, device), c, w,
                                new TornadoForward.Settings(rows, batch, slots, window, kv, false, o.local(), o.profile()));
                        run(f, c, ctx, batch, gen, dms ? new DmsConfig(window, 100f, 5f, DmsConfig.Convention.NVIDIA) : null, fraction, kv, bw, o.profile());
                        f.close();
                    }
                }
            }
        }
    }

    static void run(TornadoForward f, ModelConfig c, int ctx, int batch, int gen, DmsConfig dms, double fraction, KvDtype kv, double bw, boolean profile) {
        SplittableRandom r = new SplittableRandom(42);
        List<Sequence> seqs = new ArrayList<>();
        int fill = ctx - gen;
        long t0 = System.nanoTime();
        int[] next = new int[batch];
        for (int b = 0; b < batch; b++) {
            Sequence s = f.newSequence(kv, dms);
            if (dms != null) s.forceEvictFraction(fraction);
            int[] prompt = new int[fill];
            for (int i = 0; i < fill; i++) prompt[i] = r.nextInt(c.vocabSize());
            next[b] = f.forwardArgmax(s, prompt, 0, fill);
            seqs.add(s);
        }
        double prefill = (System.nanoTime() - t0) / 1e9;
        Sequence[] rowSeqs = seqs.toArray(new Sequence[0]);
        next = f.forwardRowsArgmax(rowSeqs, next, batch); // warm-up step
        long k0 = f.kernelNanos();
        long t1 = System.nanoTime();
        for (int s = 1; s < gen; s++) next = f.forwardRowsArgmax(rowSeqs, next, batch);
        double decode = (System.nanoTime() - t1) / 1e9;
        if (profile) {
            System.out.printf(Locale.ROOT, "  decode: %.2f ms per step wall, %.2f ms in kernels%n",
                    decode * 1e3 / (gen - 1), (f.kernelNanos() - k0) / 1e6 / (gen - 1));
        }
        double tps = batch * (gen - 1) / decode;
        System.out.printf(Locale.ROOT, "  launches per step: %d in %d graph execution(s) (%d layers)%n", f.launchesPerStep(), f.executionsPerStep(), c.layers());
        long kvBytes = 0, dense = 0, liveRows = 0;
        double cr = 0;
        for (Sequence s : seqs) {
            kvBytes += s.kv().bytesAllocated();
            dense += s.kv().denseBf16Bytes();
            cr += s.kv().compressionRatio();
            liveRows += s.kv().liveTokens();
        }
        int hd = c.headDim();
        long rowBytes = kv == KvDtype.F32 ? 4L * hd : hd + 4;
        double stepBytes = f.weightBytes() + 2.0 * rowBytes * liveRows;
        double roof = batch / (stepBytes / bw);
        System.out.printf(Locale.ROOT, "%-6d %2d %-5s %10s %10s %9.0f %10.1f %10.1f %8.0f%% %9.2f%n", ctx, batch, dms == null ? "dense" : "dms",
                mib(kvBytes), mib(dense), batch * (double) fill / prefill, tps, roof, 100 * tps / roof, cr / batch);
        for (Sequence s : seqs) s.kv().release();
    }

    static String mib(long b) { return String.format(Locale.ROOT, "%.0fMiB", b / 1048576.0); }

    static int[] ints(String s) {
        String[] p = s.split(",");
        int[] r = new int[p.length];
        for (int i = 0; i < p.length; i++) r[i] = Integer.parseInt(p[i].trim());
        return r;
    }
}
