package dev.fastdms.model.tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;

/**
 * The default thread count: one per physical core. Decode streams weights from memory, and a second hyper-thread
 * on a core adds no bandwidth, only contention for the core's vector units and caches.
 */
public final class CpuCores {
    private CpuCores() {}

    /** Physical cores among the processors this JVM may use (all of them where the topology cannot be read). */
    public static int forThisProcess() {
        int available = Runtime.getRuntime().availableProcessors();
        int[] counts = count(Path.of("/sys/devices/system/cpu"));
        if (counts == null) return available;
        // the JVM sees a share of the machine (affinity, cgroups): keep the same share of the cores
        return Math.max(1, Math.min(available, (int) ((long) available * counts[1] / counts[0])));
    }

    /** The CPU's vendor string as /proc/cpuinfo gives it (e.g. GenuineIntel, AuthenticAMD), or "" when unknown. */
    public static String vendor() {
        try (var lines = Files.lines(Path.of("/proc/cpuinfo"))) {
            return lines.filter(l -> l.startsWith("vendor_id")).map(l -> l.substring(l.indexOf(':') + 1).trim()).findFirst().orElse("");
        } catch (IOException | RuntimeException e) {
            return "";
        }
    }

    /** {logical processors, distinct (package, core) pairs} under a sysfs cpu folder, or null when unreadable. */
    static int[] count(Path sysCpu) {
        try (var dirs = Files.list(sysCpu)) {
            Set<String> cores = new HashSet<>();
            int logical = 0;
            for (Path cpu : (Iterable<Path>) dirs::iterator) {
                if (!cpu.getFileName().toString().matches("cpu\\d+")) continue;
                Path topology = cpu.resolve("topology");
                if (!Files.isDirectory(topology)) continue; // offline
                cores.add(Files.readString(topology.resolve("physical_package_id")).trim() + "/" + Files.readString(topology.resolve("core_id")).trim());
                logical++;
            }
            return logical == 0 ? null : new int[]{logical, cores.size()};
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }
}
