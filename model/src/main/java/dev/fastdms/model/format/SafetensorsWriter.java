package dev.fastdms.model.format;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.fastdms.model.tensor.GgmlType;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/** Writes a single .safetensors file from in-memory tensors (F32/F16/BF16 bytes, little-endian). */
public final class SafetensorsWriter {
    private record T(GgmlType type, long[] shape, byte[] data) {}

    private final Map<String, T> tensors = new LinkedHashMap<>();

    public SafetensorsWriter tensor(String name, GgmlType type, long[] shape, byte[] data) {
        if (type != GgmlType.F32 && type != GgmlType.F16 && type != GgmlType.BF16) throw new IllegalArgumentException("safetensors: " + type);
        tensors.put(name, new T(type, shape, data));
        return this;
    }

    public void write(Path path) throws IOException {
        ObjectMapper om = new ObjectMapper();
        ObjectNode header = om.createObjectNode();
        long off = 0;
        for (var e : tensors.entrySet()) {
            ObjectNode t = header.putObject(e.getKey());
            t.put("dtype", e.getValue().type.name());
            var shape = t.putArray("shape");
            for (long d : e.getValue().shape) shape.add(d);
            t.putArray("data_offsets").add(off).add(off + e.getValue().data.length);
            off += e.getValue().data.length;
        }
        byte[] h = om.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        int pad = (8 - h.length % 8) % 8;
        try (OutputStream os = Files.newOutputStream(path)) {
            os.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length + pad).array());
            os.write(h);
            for (int i = 0; i < pad; i++) os.write(' ');
            for (T t : tensors.values()) os.write(t.data);
        }
    }
}
