package dev.fastdms.tornado;

import dev.fastdms.cache.Q8Block;
import dev.fastdms.model.tensor.FloatTensor;
import dev.fastdms.model.tensor.GgmlType;
import dev.fastdms.model.tensor.Quantizer;
import org.junit.jupiter.api.Test;
import uk.ac.manchester.tornado.api.GridScheduler;
import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.WorkerGrid1D;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;
import uk.ac.manchester.tornado.api.types.arrays.ByteArray;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;

import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The four Q8 writers agree with cache's Q8Block: GGUF Q8_0 (Quantizer), the device's re-quantised weights
 * (DeviceWeights) byte for byte, and the device kernel that quantises KV rows code for code and scale for scale, on
 * random rows with exact ties (x / d = ±k.5) and values just below a half.
 */
class Q8AgreementTest {
    static final int ROWS = 8, COLS = 64;

    static float[] rows() {
        SplittableRandom r = new SplittableRandom(11);
        float[] x = new float[ROWS * COLS];
        for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextGaussian() * 3);
        // block 0 of row 0: absmax 127, so d = 1 and these sit on halves
        float[] ties = {127f, -2.5f, 2.5f, -0.5f, 0.5f, -126.5f, 0.49999997f, -0.49999997f};
        System.arraycopy(ties, 0, x, 0, ties.length);
        return x;
    }

    static void quantizeRows(KernelContext kc, FloatArray in, ByteArray out, FloatArray sc, int blocks, int hd) {
        int r = kc.globalIdx;
        if (r < ROWS) Kernels.quantizeQ8Row(in, r * hd, out, sc, blocks, hd, r);
    }

    @Test
    void quantizerAndDeviceWeightsWriteTheSameBytes() {
        float[] x = rows();
        byte[] gguf = Quantizer.toQ8_0(x);
        FloatTensor f32 = FloatTensor.of(GgmlType.F32, MemorySegment.ofArray(x), x.length);
        ByteArray dev = (ByteArray) DeviceWeights.requantizeQ8(new FloatTensor[]{f32}, ROWS, COLS).data();
        assertArrayEquals(gguf, dev.toHeapArray());
        byte[] q = new byte[32];
        for (int b = 0; b < x.length / 32; b++) {
            float d = Q8Block.quantize(x, 32 * b, 32, q, 0);
            assertEquals(Float.floatToFloat16(d), (short) ((gguf[34 * b] & 0xFF) | (gguf[34 * b + 1] << 8)), "scale of block " + b);
            for (int i = 0; i < 32; i++) assertEquals(q[i], gguf[34 * b + 2 + i], "block " + b + " value " + i);
        }
        assertEquals(-3, gguf[2 + 1]);
        assertEquals(0, gguf[2 + 6]);
    }

    @Test
    void theDeviceKvKernelWritesQ8BlocksCodes() {
        float[] x = rows();
        int blocks = COLS / 32;
        FloatArray in = FloatArray.fromArray(x), sc = new FloatArray(ROWS * blocks);
        ByteArray out = new ByteArray(ROWS * COLS);
        KernelContext kc = new KernelContext();
        TaskGraph g = new TaskGraph("q").transferToDevice(DataTransferMode.EVERY_EXECUTION, in)
                .task("k", Q8AgreementTest::quantizeRows, kc, in, out, sc, blocks, COLS)
                .transferToHost(DataTransferMode.EVERY_EXECUTION, out, sc);
        WorkerGrid1D w = new WorkerGrid1D(16);
        w.setLocalWork(16, 1, 1);
        try (TornadoExecutionPlan p = new TornadoExecutionPlan(g.snapshot())) {
            p.withGridScheduler(new GridScheduler("q.k", w)).execute();
        } catch (Exception e) { throw new RuntimeException(e); }
        byte[] q = new byte[32];
        for (int b = 0; b < ROWS * blocks; b++) {
            float d = Q8Block.quantize(x, 32 * b, 32, q, 0);
            assertEquals(d, sc.get(b), "scale of block " + b);
            for (int i = 0; i < 32; i++) assertEquals(q[i], out.get(32 * b + i), "block " + b + " value " + i);
        }
    }
}
