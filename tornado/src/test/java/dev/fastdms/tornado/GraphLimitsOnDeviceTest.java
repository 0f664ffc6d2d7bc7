package dev.fastdms.tornado;

import org.junit.jupiter.api.Test;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

import java.nio.BufferOverflowException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The two TornadoVM 5.2.1 limits on the size of one task graph, settled on the device (see
 * {@link ForwardGraphs#GRAPH_CODE_BYTES} and {@link Devices#TVM_BYTECODE_BYTES}):
 * <ol>
 *   <li>the graph's task list, a fixed 8 KB buffer filled as tasks are added (15 + 5 bytes per argument): 71 tasks
 *   of 20 arguments fit, the 72nd does not, whatever {@code tornado.tvm.maxbytecodesize} says;</li>
 *   <li>the TornadoVM bytecode the graph compiles to, sized by {@code tornado.tvm.maxbytecodesize}: a 64-task graph
 *   runs with the 256 KB the tests and the launcher pass, and fails with TornadoVM's 4 KB default (child JVMs that
 *   differ only in the property).</li>
 * </ol>
 */
class GraphLimitsOnDeviceTest {
    /** One sequential kernel of 20 arguments (the most a task takes): a[0] += 1. */
    static void bump20(IntArray a, IntArray b1, IntArray b2, IntArray b3, IntArray b4, IntArray b5, IntArray b6, IntArray b7,
                       IntArray b8, IntArray b9, IntArray b10, IntArray b11, IntArray b12, IntArray b13, IntArray b14, IntArray b15,
                       IntArray b16, IntArray b17, IntArray b18, IntArray b19) {
        a.set(0, a.get(0) + 1);
    }

    /** The same with 12 arguments. */
    static void bump12(IntArray a, IntArray b1, IntArray b2, IntArray b3, IntArray b4, IntArray b5, IntArray b6, IntArray b7,
                       IntArray b8, IntArray b9, IntArray b10, IntArray b11) {
        a.set(0, a.get(0) + 1);
    }

    static final int TASKS = 64;

    @Test
    void aGraphHoldsAtMost71TasksOfTwentyArgumentsWhateverTheBytecodeProperty() {
        assertEquals("262144", System.getProperty("tornado.tvm.maxbytecodesize"), "the surefire argLine passes it");
        assertEquals(71, ForwardGraphs.MAX_TASKS_PER_GRAPH);
        IntArray a = new IntArray(1);
        IntArray[] b = new IntArray[19];
        for (int i = 0; i < b.length; i++) b[i] = new IntArray(1);
        TaskGraph g = new TaskGraph("limits20").transferToDevice(DataTransferMode.EVERY_EXECUTION, a);
        for (int t = 0; t < ForwardGraphs.MAX_TASKS_PER_GRAPH; t++) add20(g, "t" + t, a, b);
        Throwable e = assertThrows(Throwable.class, () -> add20(g, "over", a, b));
        boolean overflow = false;
        for (Throwable c = e; c != null; c = c.getCause()) overflow |= c instanceof BufferOverflowException;
        assertTrue(overflow, "the 72nd task overflows the graph's 8 KB task buffer: " + e);
    }

    private static void add20(TaskGraph g, String name, IntArray a, IntArray[] b) {
        g.task(name, GraphLimitsOnDeviceTest::bump20, a, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
                b[12], b[13], b[14], b[15], b[16], b[17], b[18]);
    }

    /** Builds and runs the 64-task graph; returns a[0] (64 when every task ran once). */
    static int runManyTasks() {
        IntArray a = new IntArray(1);
        IntArray[] b = new IntArray[11];
        for (int i = 0; i < b.length; i++) b[i] = new IntArray(1);
        TaskGraph g = new TaskGraph("limits12").transferToDevice(DataTransferMode.EVERY_EXECUTION, a)
                .transferToDevice(DataTransferMode.FIRST_EXECUTION, (Object[]) b);
        for (int t = 0; t < TASKS; t++) {
            g.task("t" + t, GraphLimitsOnDeviceTest::bump12, a, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10]);
        }
        g.transferToHost(DataTransferMode.EVERY_EXECUTION, a);
        try (TornadoExecutionPlan plan = new TornadoExecutionPlan(g.snapshot())) {
            plan.execute();
        } catch (RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
        return a.get(0);
    }

    @Test
    void theBytecodePropertyLiftsTheSecondLimitAndIsNeeded() throws Exception {
        assertEquals(TASKS, runManyTasks(), "64 tasks in one graph, run in order, with 256 KB of TornadoVM bytecode");
        // the same graph in two child JVMs that differ only in the property: TornadoVM's default 4 KB overflows (the
        // runtime turns the overflow into a bailout: an error with tornado.recover.bailout=False, and with its default,
        // True, a silent fallback to running every task as sequential Java), 256 KB runs
        Child small = child(4096), big = child(Devices.TVM_BYTECODE_BYTES);
        assertEquals(2, small.code(), small.out());
        assertTrue(small.out().contains("TornadoBailoutRuntimeException"), small.out());
        assertEquals(0, big.code(), big.out());
        assertTrue(big.out().contains("ran " + TASKS), big.out());
    }

    record Child(int code, String out) {}

    private static Child child(int bytecodeBytes) throws Exception {
        Path argfile = Path.of("target/tornado-argfile").toAbsolutePath();
        assertTrue(Files.exists(argfile), argfile.toString());
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "@" + argfile,
                "-Dtornado.tvm.maxbytecodesize=" + bytecodeBytes, "-Dtornado.recover.bailout=False",
                "-cp", System.getProperty("java.class.path"), GraphLimitsOnDeviceTest.class.getName()));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(5, TimeUnit.MINUTES));
        return new Child(p.exitValue(), out);
    }

    /** The child JVM: exit 0 when the graph ran (every task once), 2 when TornadoVM gave up on it. */
    public static void main(String[] args) {
        try {
            int n = runManyTasks();
            System.out.println("ran " + n);
            System.exit(n == TASKS ? 0 : 1);
        } catch (RuntimeException e) {
            System.out.println(e);
            System.exit(2);
        }
    }
}
