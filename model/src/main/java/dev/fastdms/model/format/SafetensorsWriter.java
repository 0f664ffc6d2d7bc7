package dev.fastdms.model.format;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.fastdms.model.tensor.GgmlType;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Writes one .safetensors file (F32/F16/BF16, little-endian): the header is built first from names, shapes and sizes,
 * then tensor bytes stream from arrays, memory maps or callbacks, so a full model copy never sits on the heap.
 * Writing config.json (and an index for shards) is the caller's job.
 */
public final class SafetensorsWriter {
    private record T(GgmlType type, long[] shape, long bytes, GGUFWriter.TensorData data) {}

    private final Map<String, T> tensors = new LinkedHashMap<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();

    /** A {@code __metadata__} entry (string to string, e.g. "format": "pt"). */
    public SafetensorsWriter metadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    public SafetensorsWriter tensor(String name, GgmlType type, long[] shape, GGUFWriter.TensorData data) {
        if (type != GgmlType.F32 && type != GgmlType.F16 && type != GgmlType.BF16) {
            throw new IllegalArgumentException("safetensors holds F32, F16 or BF16 here, not " + type + " (" + name + ")");
        }
        if (name.equals("__metadata__") || tensors.containsKey(name)) throw new IllegalArgumentException("tensor name " + name + " is taken");
        long n = 1;
        for (long d : shape) {
            if (d < 0) throw new IllegalArgumentException(name + ": dimension " + d);
            n = Math.multiplyExact(n, d);
        }
        tensors.put(name, new T(type, shape.clone(), type.byteSize(n), data));
        return this;
    }

    public SafetensorsWriter tensor(String name, GgmlType type, long[] shape, MemorySegment data) {
        checkSize(name, type, shape, data.byteSize());
        return tensor(name, type, shape, out -> GGUFWriter.copy(data, out));
    }

    public SafetensorsWriter tensor(String name, GgmlType type, long[] shape, byte[] data) {
        return tensor(name, type, shape, MemorySegment.ofArray(data));
    }

    private static void checkSize(String name, GgmlType type, long[] shape, long bytes) {
        long n = 1;
        for (long d : shape) n = Math.multiplyExact(n, d);
        if (n >= 0 && type.byteSize(n) != bytes) throw new IllegalArgumentException(name + ": " + bytes + " bytes for shape " + java.util.Arrays.toString(shape));
    }

    public void write(Path path) throws IOException {
        ObjectMapper om = new ObjectMapper();
        ObjectNode header = om.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode m = header.putObject("__metadata__");
            metadata.forEach(m::put);
        }
        long off = 0;
        for (var e : tensors.entrySet()) {
            T t = e.getValue();
            ObjectNode h = header.putObject(e.getKey());
            h.put("dtype", t.type.name());
            var shape = h.putArray("shape");
            for (long d : t.shape) shape.add(d);
            h.putArray("data_offsets").add(off).add(off + t.bytes);
            off += t.bytes;
        }
        byte[] h = om.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        int pad = (8 - h.length % 8) % 8; // the data starts 8-byte aligned; the format pads the header with spaces
        try (OutputStream os = new BufferedOutputStream(Files.newOutputStream(path), 1 << 20)) {
            os.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length + pad).array());
            os.write(h);
            for (int i = 0; i < pad; i++) os.write(' ');
            for (var e : tensors.entrySet()) {
                CountingStream c = new CountingStream(os);
                e.getValue().data.write(c);
                if (c.count != e.getValue().bytes) {
                    throw new IllegalStateException(e.getKey() + ": wrote " + c.count + " bytes, expected " + e.getValue().bytes);
                }
            }
        }
    }

    private static final class CountingStream extends OutputStream {
        final OutputStream os;
        long count;
        CountingStream(OutputStream os) { this.os = os; }
        @Override public void write(int b) throws IOException { os.write(b); count++; }
        @Override public void write(byte[] b, int off, int len) throws IOException { os.write(b, off, len); count += len; }
    }
}
