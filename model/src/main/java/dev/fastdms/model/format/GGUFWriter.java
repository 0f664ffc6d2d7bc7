package dev.fastdms.model.format;

import dev.fastdms.model.tensor.GgmlType;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes GGUF v3. Tensor bytes are produced by a callback at write time, so multi-gigabyte files stream to disk
 * without being held in memory. Metadata values: String, Integer (int32), Long (uint64), Float, Double, Boolean,
 * String[], int[], float[].
 */
public final class GGUFWriter {
    /** Writes exactly the tensor's byte size to the stream. */
    @FunctionalInterface
    public interface TensorData { void write(OutputStream out) throws IOException; }

    private record Entry(String name, GgmlType type, long[] shape, TensorData data, long bytes) {}

    private static final int ALIGN = 32;
    private final Map<String, Object> metadata = new LinkedHashMap<>();
    private final List<Entry> tensors = new ArrayList<>();

    public GGUFWriter put(String key, Object value) { metadata.put(key, value); return this; }

    /** @param shape row-major (torch order); written reversed as GGUF's ne[] */
    public GGUFWriter tensor(String name, GgmlType type, long[] shape, TensorData data) {
        long n = 1;
        for (long d : shape) n *= d;
        tensors.add(new Entry(name, type, shape, data, type.byteSize(n)));
        return this;
    }

    public void write(Path path) throws IOException {
        try (OutputStream os = new BufferedOutputStream(Files.newOutputStream(path), 1 << 20)) {
            CountingOut out = new CountingOut(os);
            out.i32(GGUF.MAGIC);
            out.i32(3);
            out.i64(tensors.size());
            out.i64(metadata.size());
            for (var e : metadata.entrySet()) {
                out.str(e.getKey());
                value(out, e.getValue(), true);
            }
            long offset = 0;
            for (Entry t : tensors) {
                out.str(t.name);
                out.i32(t.shape.length);
                for (int d = t.shape.length - 1; d >= 0; d--) out.i64(t.shape[d]);
                out.i32(t.type.id);
                out.i64(offset);
                offset = align(offset + t.bytes);
            }
            out.pad();
            for (Entry t : tensors) {
                long before = out.count;
                t.data.write(out);
                if (out.count - before != t.bytes) throw new IllegalStateException(t.name + ": wrote " + (out.count - before) + " bytes, expected " + t.bytes);
                out.pad();
            }
        }
    }

    private static long align(long x) { return (x + ALIGN - 1) / ALIGN * ALIGN; }

    private static void value(CountingOut out, Object v, boolean tagged) throws IOException {
        switch (v) {
            case String s -> { if (tagged) out.i32(8); out.str(s); }
            case Integer i -> { if (tagged) out.i32(5); out.i32(i); }
            case Long l -> { if (tagged) out.i32(10); out.i64(l); }
            case Float f -> { if (tagged) out.i32(6); out.i32(Float.floatToRawIntBits(f)); }
            case Double d -> { if (tagged) out.i32(12); out.i64(Double.doubleToRawLongBits(d)); }
            case Boolean b -> { if (tagged) out.i32(7); out.write(b ? 1 : 0); }
            case String[] a -> { out.i32(9); out.i32(8); out.i64(a.length); for (String s : a) out.str(s); }
            case int[] a -> { out.i32(9); out.i32(5); out.i64(a.length); for (int x : a) out.i32(x); }
            case float[] a -> { out.i32(9); out.i32(6); out.i64(a.length); for (float x : a) out.i32(Float.floatToRawIntBits(x)); }
            default -> throw new IllegalArgumentException("unsupported GGUF metadata value " + v.getClass());
        }
    }

    private static final class CountingOut extends OutputStream {
        final OutputStream os;
        long count;
        final ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        CountingOut(OutputStream os) { this.os = os; }
        @Override public void write(int x) throws IOException { os.write(x); count++; }
        @Override public void write(byte[] a, int off, int len) throws IOException { os.write(a, off, len); count += len; }
        void i32(int x) throws IOException { b.clear(); b.putInt(x); write(b.array(), 0, 4); }
        void i64(long x) throws IOException { b.clear(); b.putLong(x); write(b.array(), 0, 8); }
        void str(String s) throws IOException { byte[] u = s.getBytes(StandardCharsets.UTF_8); i64(u.length); write(u, 0, u.length); }
        void pad() throws IOException { while (count % ALIGN != 0) write(0); }
    }
}
