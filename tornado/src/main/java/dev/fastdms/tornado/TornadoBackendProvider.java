package dev.fastdms.tornado;

import dev.fastdms.cache.KvDtype;
import dev.fastdms.model.BackendProvider;
import dev.fastdms.model.ForwardPass;
import dev.fastdms.model.ModelConfig;
import dev.fastdms.model.Weights;

import java.util.List;

/**
 * Registers the TornadoVM backend with the engine. This class names no TornadoVM type, so the engine can list it in a
 * JVM started without TornadoVM and get a clear reason instead of a linkage error.
 */
public final class TornadoBackendProvider implements BackendProvider {
    /** Work-group size: 128 suits GPUs; CPUs (PoCL) prefer small groups (DeviceBench --local tries others). */
    static int localSize(String deviceName) {
        String n = deviceName.toLowerCase();
        return n.contains("cpu") || n.contains("pthread") || n.contains("epyc") || n.contains("xeon") || n.contains("core") ? 16 : 128;
    }

    @Override public List<String> names() { return List.of("opencl", "ptx", "spirv"); }

    @Override
    public String unavailableReason() {
        try {
            Class.forName("uk.ac.manchester.tornado.api.TaskGraph");
        } catch (ClassNotFoundException | LinkageError e) {
            return "TornadoVM is not on this JVM's module path (run ./fastdms tornado-setup, then use ./fastdms, which adds @tornado-argfile.local)";
        }
        if (System.getProperty("tornado.load.runtime.implementation") == null) {
            return "the JVM was started without TornadoVM's options (java @tornado-argfile.local ...; ./fastdms adds them for --backend opencl|ptx|spirv)";
        }
        return null;
    }

    @Override
    public List<String> devices() { return Devices.describe(); }

    @Override
    public ForwardPass open(String backend, int device, ModelConfig config, Weights weights, Options o) {
        var picked = Devices.pick(backend, device);
        int window = o.kv() != null && o.kv().dms() != null ? o.kv().dms().window() : 0;
        int slots = o.kvSlotsPerHead();
        if (slots <= 0 && o.kv() != null && o.kv().budget() != null) { // --kv-budget sizes the device cache
            slots = TornadoForward.slotsWithin(backend, config, o.kv().budget().limit(), o.maxSequences(), o.kv().dtype(), Math.max(window, o.maxWindow()), o.maxRows());
            if (slots < 1) {
                throw new IllegalArgumentException("--kv-budget " + o.kv().budget().limit() + " cannot hold even one KV slot per head for "
                        + o.maxSequences() + " sequence(s) on the device");
            }
        }
        var s = new TornadoForward.Settings(o.maxRows(), o.maxSequences(), slots, Math.max(window, o.maxWindow()),
                o.kv() == null ? KvDtype.F32 : o.kv().dtype(), false,
                localSize(picked.getPhysicalDevice().getDeviceName()), false);
        TornadoForward f = new TornadoForward(backend, picked, config, weights, s);
        // k-quants have no device kernels and are re-quantised to Q8_0: say so once, the device runs other numbers
        String notes = f.weightNotes();
        if (!notes.isBlank()) {
            System.err.println("fastdms: " + notes.lines().count() + " weight tensors are converted for the device, e.g. "
                    + notes.lines().findFirst().orElse(""));
        }
        return f;
    }
}
