package dev.fastdms.tornado;

import uk.ac.manchester.tornado.api.TornadoBackend;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.common.TornadoDevice;
import uk.ac.manchester.tornado.api.enums.TornadoVMBackendType;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** The TornadoVM backends and devices of this machine, and the pick for {@code --backend NAME --device N}. */
public final class Devices {
    /**
     * TornadoVM's bytecode buffer for one graph ({@code tornado.tvm.maxbytecodesize}; 4 KB by default, too small for
     * the one graph of a forward step). TornadoVM reads the property once, when its first graph compiles
     * ({@code TornadoVMBytecodeBuilder.MAX_TORNADO_VM_BYTECODE_SIZE} is a static final), so the launcher and the
     * tests pass it on the command line; setting it here covers an embedder that loads this class before running any
     * TornadoVM graph. It does not change the other limit, the graph's fixed 8 KB task buffer (see
     * {@link ForwardGraphs#GRAPH_CODE_BYTES}). {@code GraphLimitsOnDeviceTest} checks both.
     */
    static final int TVM_BYTECODE_BYTES = 262144;

    /**
     * Entries of each dependency wait list of TornadoVM's interpreter ({@code tornado.max.events}, 32768 by
     * default): every graph execution refills all of its lists (lists x entries ints), which is most of a step's host
     * time on PoCL at the default; a list holds at most one entry per node of its graph, far below 1024 here.
     */
    static final int TVM_MAX_EVENTS = 1024;

    static {
        if (System.getProperty("tornado.tvm.maxbytecodesize") == null) System.setProperty("tornado.tvm.maxbytecodesize", Integer.toString(TVM_BYTECODE_BYTES));
        if (System.getProperty("tornado.max.events") == null) System.setProperty("tornado.max.events", Integer.toString(TVM_MAX_EVENTS));
    }

    /** Loads this class (its static block sets the bytecode-buffer property when nobody has). */
    static void init() {}

    private Devices() {}

    static TornadoVMBackendType type(String backend) {
        return switch (backend) {
            case "opencl" -> TornadoVMBackendType.OPENCL;
            case "ptx" -> TornadoVMBackendType.PTX;
            case "spirv" -> TornadoVMBackendType.SPIRV;
            default -> throw new IllegalArgumentException("unknown TornadoVM backend " + backend + " (opencl, ptx, spirv)");
        };
    }

    /**
     * TornadoVM's backends, or one clear error when its runtime cannot start. An SDK built with the PTX backend loads
     * NVIDIA's driver library (libcuda.so.1) when the runtime starts, for every backend: on a machine without it that
     * is an UnsatisfiedLinkError, which becomes an IllegalArgumentException (exit 2) saying so.
     */
    static List<TornadoBackend> backends() {
        try {
            return TornadoExecutionPlan.getTornadoDeviceMap().getAllBackends();
        } catch (LinkageError | RuntimeException e) {
            throw new IllegalArgumentException(startFailure(e), e);
        }
    }

    /** The one-line reason for a runtime that failed to start (the missing CUDA driver named when that is it). */
    static String startFailure(Throwable e) {
        StringBuilder all = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause()) all.append(t).append(' ');
        if (all.indexOf("libcuda") >= 0 || all.indexOf("libnvidia") >= 0) {
            return "the TornadoVM SDK includes the PTX backend, which needs NVIDIA's CUDA driver (libcuda.so.1), and this machine has none:"
                    + " run --backend ptx where an NVIDIA GPU and its driver are installed (an OpenCL-only SDK serves --backend opencl here)";
        }
        String m = String.valueOf(e.getMessage()).replace('\n', ' ');
        return "TornadoVM's runtime did not start: " + e.getClass().getSimpleName() + ": " + m;
    }

    /** The device, or a one-line error naming what this SDK and machine have. */
    public static TornadoDevice pick(String backend, int index) {
        TornadoVMBackendType want = type(backend);
        List<String> have = new ArrayList<>();
        for (TornadoBackend b : backends()) {
            have.add(b.getBackendType().name().toLowerCase(Locale.ROOT));
            if (b.getBackendType() != want) continue;
            if (b.getNumDevices() == 0) throw new IllegalArgumentException("the " + backend + " backend sees no device on this machine");
            int i = index < 0 ? 0 : index;
            if (i >= b.getNumDevices()) {
                throw new IllegalArgumentException("--device " + i + ": the " + backend + " backend has " + b.getNumDevices() + " device(s) (0.." + (b.getNumDevices() - 1) + ")");
            }
            return b.getDevice(i);
        }
        throw new IllegalArgumentException("the installed TornadoVM SDK has no " + backend + " backend (it has: "
                + (have.isEmpty() ? "none" : String.join(", ", have)) + "); rebuild TornadoVM with it (see the README)");
    }

    /** One line per device: backend, index, name, global memory. */
    public static List<String> describe() {
        List<String> out = new ArrayList<>();
        List<TornadoBackend> all;
        try {
            all = backends();
        } catch (IllegalArgumentException e) {
            return List.of("(no TornadoVM device: " + e.getMessage() + ")");
        }
        for (TornadoBackend b : all) {
            for (int i = 0; i < b.getNumDevices(); i++) {
                TornadoDevice d = b.getDevice(i);
                out.add(String.format(Locale.ROOT, "--backend %s --device %d  %s  (%d MiB max allocation)",
                        b.getBackendType().name().toLowerCase(Locale.ROOT), i, d.getPhysicalDevice().getDeviceName(), d.getMaxAllocMemory() >> 20));
            }
        }
        return out;
    }
}
