package dev.fastdms.model.format;

import dev.fastdms.model.tensor.GgmlType;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A GGUF (v2/v3) file, memory-mapped: metadata as Java values and tensors as slices of the map (weights are never
 * copied to the heap). Every length, count and offset is checked against the file size, so a corrupt or truncated
 * file fails with a {@link ModelFormatException} naming what is wrong.
 *
 * <p>Metadata values: integers become Integer/Long (unsigned 32-bit values as Long), floats Float/Double, strings
 * String; arrays become String[], int[], long[], float[], double[], boolean[] or Object[] (nested arrays).
 */
public final class GGUF implements AutoCloseable {
    public static final int MAGIC = 0x46554747; // "GGUF" little-endian
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Path path;
    private final Arena arena;
    private final MemorySegment file;
    private final int version;
    private final Map<String, Object> metadata;
    private final Map<String, RawTensor> tensors;
    private final long dataOffset;
    private long pos;

    private GGUF(Path path, Arena arena, MemorySegment file) {
        this.path = path;
        this.arena = arena;
        this.file = file;
        if (file.byteSize() < 24) throw bad("file is too short to be GGUF (" + file.byteSize() + " bytes)");
        int magic = file.get(I32, 0);
        if (magic != MAGIC) throw bad("not a GGUF file (bad magic)");
        version = file.get(I32, 4);
        if (version != 2 && version != 3) throw bad("unsupported GGUF version " + version + " (2 and 3 are supported)");
        pos = 8;
        long tensorCount = u64("tensor count");
        long kvCount = u64("metadata count");
        if (tensorCount < 0 || tensorCount > 1_000_000) throw bad("absurd tensor count " + tensorCount);
        if (kvCount < 0 || kvCount > 1_000_000) throw bad("absurd metadata count " + kvCount);
        Map<String, Object> md = new LinkedHashMap<>();
        for (long i = 0; i < kvCount; i++) {
            String key = string("metadata key");
            int type = i32("metadata type of " + key);
            md.put(key, value(type, key));
        }
        metadata = Collections.unmodifiableMap(md);
        long alignment = md.get("general.alignment") instanceof Number n ? n.longValue() : 32;
        if (alignment <= 0 || (alignment & (alignment - 1)) != 0) throw bad("bad general.alignment " + alignment);

        record Info(String name, GgmlType type, long[] shape, long offset) {}
        Info[] infos = new Info[(int) tensorCount];
        for (int i = 0; i < tensorCount; i++) {
            String name = string("tensor name");
            int nDims = i32("dimension count of " + name);
            if (nDims < 1 || nDims > 4) throw bad("tensor " + name + " has " + nDims + " dimensions");
            long[] ne = new long[nDims];
            for (int d = 0; d < nDims; d++) {
                ne[d] = u64("dimension of " + name);
                if (ne[d] <= 0 || ne[d] > (1L << 40)) throw bad("tensor " + name + " has absurd dimension " + ne[d]);
            }
            int typeId = i32("type of " + name);
            GgmlType type = GgmlType.byId(typeId);
            if (type == null) throw bad("tensor " + name + " has unknown type id " + typeId);
            long offset = u64("offset of " + name);
            long[] shape = new long[nDims];
            for (int d = 0; d < nDims; d++) shape[d] = ne[nDims - 1 - d];
            infos[i] = new Info(name, type, shape, offset);
        }
        dataOffset = (pos + alignment - 1) / alignment * alignment;
        Map<String, RawTensor> ts = new LinkedHashMap<>();
        for (Info info : infos) {
            long elements = 1;
            for (long d : info.shape) elements = Math.multiplyExact(elements, d);
            if (elements % info.type.blockSize != 0) {
                throw bad("tensor " + info.name + " (" + info.type + ") has " + elements + " elements, not a multiple of its block size");
            }
            long bytes = info.type.byteSize(elements);
            long start = dataOffset + info.offset;
            if (info.offset < 0 || start + bytes > file.byteSize() || start + bytes < start) {
                throw bad("tensor " + info.name + " lies outside the file (offset " + info.offset + ", " + bytes
                        + " bytes; file is " + file.byteSize() + " bytes: truncated?)");
            }
            ts.put(info.name, new RawTensor(info.name, info.type, info.shape, file.asSlice(start, bytes)));
        }
        tensors = Collections.unmodifiableMap(ts);
    }

    /** Maps and parses a GGUF file. The map lives until {@link #close()}. */
    public static GGUF open(Path path) {
        if (!Files.isRegularFile(path)) throw new ModelFormatException(path + ": no such file");
        Arena arena = Arena.ofShared();
        try {
            return new GGUF(path, arena, Mapped.map(path, arena));
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** Whether the file starts with the GGUF magic (cheap check used to detect formats). */
    public static boolean looksLikeGguf(Path path) {
        try (var in = Files.newInputStream(path)) {
            byte[] b = in.readNBytes(4);
            return b.length == 4 && b[0] == 'G' && b[1] == 'G' && b[2] == 'U' && b[3] == 'F';
        } catch (IOException e) {
            return false;
        }
    }

    public Path path() { return path; }
    public int version() { return version; }
    public Map<String, Object> metadata() { return metadata; }
    public Map<String, RawTensor> tensors() { return tensors; }
    public long dataOffset() { return dataOffset; }
    public long fileSize() { return file.byteSize(); }

    public RawTensor tensor(String name) {
        RawTensor t = tensors.get(name);
        if (t == null) throw bad("missing tensor " + name);
        return t;
    }

    public String getString(String key, String dflt) { return metadata.get(key) instanceof String s ? s : dflt; }

    public String requireString(String key) {
        if (metadata.get(key) instanceof String s) return s;
        throw bad("missing metadata " + key);
    }

    public long getLong(String key, long dflt) { return metadata.get(key) instanceof Number n ? n.longValue() : dflt; }

    public int requireInt(String key) {
        if (metadata.get(key) instanceof Number n) return Math.toIntExact(n.longValue());
        throw bad("missing metadata " + key);
    }

    public float getFloat(String key, float dflt) { return metadata.get(key) instanceof Number n ? n.floatValue() : dflt; }

    @Override
    public void close() { arena.close(); }

    // ---- parsing ----

    private ModelFormatException bad(String what) { return new ModelFormatException(path + ": " + what); }

    private void need(long n, String what) {
        if (n < 0 || pos + n > file.byteSize()) throw bad("truncated while reading " + what);
    }

    private int i32(String what) { need(4, what); int v = file.get(I32, pos); pos += 4; return v; }

    private long u64(String what) { need(8, what); long v = file.get(I64, pos); pos += 8; return v; }

    private String string(String what) {
        long len = u64(what);
        if (len < 0 || len > Integer.MAX_VALUE) throw bad("absurd string length " + len + " in " + what);
        need(len, what);
        byte[] b = file.asSlice(pos, len).toArray(ValueLayout.JAVA_BYTE);
        pos += len;
        return new String(b, StandardCharsets.UTF_8);
    }

    private Object value(int type, String key) {
        return switch (type) {
            case 0 -> { need(1, key); yield (int) (file.get(ValueLayout.JAVA_BYTE, pos++) & 0xFF); }
            case 1 -> { need(1, key); yield (int) file.get(ValueLayout.JAVA_BYTE, pos++); }
            case 2 -> { need(2, key); int v = file.get(I16, pos) & 0xFFFF; pos += 2; yield v; }
            case 3 -> { need(2, key); int v = file.get(I16, pos); pos += 2; yield v; }
            case 4 -> Integer.toUnsignedLong(i32(key));
            case 5 -> i32(key);
            case 6 -> { need(4, key); float v = file.get(F32, pos); pos += 4; yield v; }
            case 7 -> { need(1, key); yield file.get(ValueLayout.JAVA_BYTE, pos++) != 0; }
            case 8 -> string(key);
            case 9 -> array(key);
            case 10, 11 -> u64(key);
            case 12 -> { need(8, key); double v = file.get(F64, pos); pos += 8; yield v; }
            default -> throw bad("metadata " + key + " has unknown value type " + type);
        };
    }

    private Object array(String key) {
        int elemType = i32(key);
        long n = u64(key);
        if (n < 0 || n > file.byteSize()) throw bad("metadata " + key + " has absurd array length " + n);
        int count = (int) n;
        switch (elemType) {
            case 8 -> {
                String[] a = new String[count];
                for (int i = 0; i < count; i++) a[i] = string(key);
                return a;
            }
            case 0, 1, 2, 3, 4, 5 -> {
                int[] a = new int[count];
                for (int i = 0; i < count; i++) a[i] = ((Number) value(elemType, key)).intValue();
                return a;
            }
            case 10, 11 -> {
                long[] a = new long[count];
                for (int i = 0; i < count; i++) a[i] = u64(key);
                return a;
            }
            case 6 -> {
                need(4L * count, key);
                float[] a = new float[count];
                MemorySegment.copy(file, F32, pos, a, 0, count);
                pos += 4L * count;
                return a;
            }
            case 12 -> {
                double[] a = new double[count];
                for (int i = 0; i < count; i++) a[i] = (Double) value(12, key);
                return a;
            }
            case 7 -> {
                boolean[] a = new boolean[count];
                for (int i = 0; i < count; i++) a[i] = (Boolean) value(7, key);
                return a;
            }
            case 9 -> {
                Object[] a = new Object[count];
                for (int i = 0; i < count; i++) a[i] = array(key);
                return a;
            }
            default -> throw bad("metadata " + key + " has unknown array element type " + elemType);
        }
    }
}
