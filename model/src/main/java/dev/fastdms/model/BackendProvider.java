package dev.fastdms.model;

import java.util.List;
import java.util.ServiceLoader;

/**
 * A forward-pass backend other than the JVM one, found with {@link ServiceLoader} (the TornadoVM backend lives in its
 * own module, built only where a TornadoVM SDK is installed, so the engine cannot name it at compile time).
 */
public interface BackendProvider {
    /** Backend names this provider serves (e.g. opencl, ptx, spirv). */
    List<String> names();

    /**
     * Why this provider cannot run in this JVM (e.g. TornadoVM's runtime is not on the module path), or null when
     * it can.
     */
    String unavailableReason();

    /**
     * @param backend one of {@link #names()}
     * @param device  device index within the backend (-1: its default)
     */
    ForwardPass open(String backend, int device, ModelConfig config, Weights weights, Options options);

    /** One line per device this provider can run on (only called when {@link #unavailableReason()} is null). */
    default List<String> devices() { return List.of(); }

    /**
     * Device-side sizing the engine passes through: rows per step, sequences held at once, KV slots per head (0: the
     * context), the KV settings new sequences get, and the largest DMS window any sequence will use.
     */
    record Options(int maxRows, int maxSequences, int kvSlotsPerHead, KvSettings kv, int maxWindow) {}

    /** Backend names of every provider on the class path. */
    static List<BackendProvider> all() {
        return ServiceLoader.load(BackendProvider.class).stream().map(ServiceLoader.Provider::get).toList();
    }

    /** The JVM's backends plus the installed providers' names, for help texts and errors. */
    static String knownBackends() {
        StringBuilder sb = new StringBuilder("jvm");
        for (BackendProvider p : all()) for (String n : p.names()) sb.append(", ").append(n);
        return sb.toString();
    }
}
