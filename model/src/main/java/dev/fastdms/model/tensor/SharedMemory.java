package dev.fastdms.model.tensor;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.atomic.AtomicLong;

/** RAM for the copies of weights that the JVM forward re-lays at load ({@link ColumnPanels}, {@link Q4_KInt16}). */
final class SharedMemory {
    private static final AtomicLong MAPPED = new AtomicLong();

    private SharedMemory() {}

    /** Bytes this process has mapped here so far (mappings are never counted down). */
    static long mappedSoFar() { return MAPPED.get(); }

    /**
     * Memory mapped from a deleted file in /dev/shm: the same kind of segment as the model file's mapping, so the
     * kernels' memory accesses still see one segment class and stay compiled for it (anonymous memory next to mapped
     * weights made the shared kernels polymorphic, and every matvec slower). Page-aligned. Null where /dev/shm is
     * missing or too small (containers often give it 64 MiB); the caller then keeps the original layout.
     */
    static MemorySegment allocate(long bytes) {
        Path dir = Path.of("/dev/shm");
        if (!Files.isDirectory(dir)) return null;
        try {
            // tmpfs allocates on write, and a write past its size is a bus error: leave it half free at least
            if (Files.getFileStore(dir).getUsableSpace() < 2 * bytes) return null;
            Path f = Files.createTempFile(dir, "fastdms-weights", ".bin");
            try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
                MemorySegment seg = ch.map(FileChannel.MapMode.READ_WRITE, 0, bytes, Arena.ofAuto());
                MAPPED.addAndGet(bytes);
                return seg;
            } finally {
                Files.delete(f); // the mapping keeps the memory until it is unreachable
            }
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }
}
