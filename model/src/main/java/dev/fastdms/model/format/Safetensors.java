package dev.fastdms.model.format;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.fastdms.model.tensor.GgmlType;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One .safetensors file, memory-mapped: an 8-byte little-endian header length, a JSON header
 * {name: {dtype, shape, data_offsets: [begin, end]}} and the tensor bytes. Tensor names are the file's own.
 */
final class Safetensors {
    private Safetensors() {}

    /** Maps the file into {@code arena} and returns its tensors by their stored names. */
    static Map<String, RawTensor> read(Path path, Arena arena) {
        MemorySegment f = Mapped.map(path, arena);
        if (f.byteSize() < 8) throw new ModelFormatException(path + ": too short for safetensors");
        long headerLen = f.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
        if (headerLen <= 0 || headerLen > 100_000_000 || 8 + headerLen > f.byteSize()) {
            throw new ModelFormatException(path + ": corrupt safetensors header length " + headerLen);
        }
        JsonNode header;
        try {
            header = new ObjectMapper().readTree(new String(f.asSlice(8, headerLen).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new ModelFormatException(path + ": corrupt safetensors header (not JSON)");
        }
        if (header == null || !header.isObject()) throw new ModelFormatException(path + ": corrupt safetensors header (not an object)");
        long base = 8 + headerLen;
        Map<String, RawTensor> out = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
            var e = it.next();
            String name = e.getKey();
            if (name.equals("__metadata__")) continue;
            JsonNode t = e.getValue();
            String dtype = t.path("dtype").asText("");
            GgmlType type = switch (dtype) {
                case "F32" -> GgmlType.F32;
                case "F16" -> GgmlType.F16;
                case "BF16" -> GgmlType.BF16;
                default -> throw new ModelFormatException(path + ": tensor " + name + " has dtype " + dtype + ", which is not supported (F32, F16, BF16 are)");
            };
            JsonNode shapeNode = t.path("shape"), offs = t.path("data_offsets");
            if (!shapeNode.isArray() || !offs.isArray() || offs.size() != 2) throw new ModelFormatException(path + ": tensor " + name + " has a malformed entry");
            long[] shape = new long[shapeNode.size()];
            long n = 1;
            for (int i = 0; i < shape.length; i++) {
                shape[i] = shapeNode.get(i).asLong(-1);
                if (shape[i] < 0 || shape[i] > (1L << 40)) throw new ModelFormatException(path + ": tensor " + name + " has absurd dimension " + shape[i]);
                n = Math.multiplyExact(n, shape[i]);
            }
            if (shape.length == 0) shape = new long[]{1};
            long begin = offs.get(0).asLong(-1), end = offs.get(1).asLong(-1);
            if (begin < 0 || end < begin || base + end > f.byteSize() || end - begin != type.byteSize(n)) {
                throw new ModelFormatException(path + ": tensor " + name + " has bad data offsets [" + begin + ", " + end + "] (file truncated?)");
            }
            out.put(name, new RawTensor(name, type, shape, f.asSlice(base + begin, end - begin)));
        }
        return out;
    }
}
