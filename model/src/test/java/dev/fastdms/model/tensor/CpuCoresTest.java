package dev.fastdms.model.tensor;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

class CpuCoresTest {
    @TempDir Path sys;

    void cpu(int n, int pkg, int core) throws Exception {
        Path t = Files.createDirectories(sys.resolve("cpu" + n).resolve("topology"));
        Files.writeString(t.resolve("physical_package_id"), pkg + "\n");
        Files.writeString(t.resolve("core_id"), core + "\n");
    }

    @Test
    void hyperThreadSiblingsCountAsOneCore() throws Exception {
        cpu(0, 0, 0); cpu(1, 0, 1); cpu(2, 0, 0); cpu(3, 0, 1); // two cores, two threads each
        cpu(4, 1, 0); cpu(5, 1, 0); // a second package reuses core ids
        Files.createDirectories(sys.resolve("cpu6")); // offline: no topology
        Files.createDirectories(sys.resolve("cpufreq"));
        assertArrayEquals(new int[]{6, 3}, CpuCores.count(sys));
    }

    @Test
    void unreadableTopologyFallsBackToAllProcessors() {
        assertNull(CpuCores.count(sys.resolve("missing")));
        int n = CpuCores.forThisProcess();
        assertTrue(n >= 1 && n <= Runtime.getRuntime().availableProcessors());
    }
}
