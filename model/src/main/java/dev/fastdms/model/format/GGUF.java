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

    /** Metadata value types; the ordinal is the id stored in the file. */
    public enum ValueType {
        UINT8(1), INT8(1), UINT16(2), INT16(2), UINT32(4), INT32(4), FLOAT32(4), BOOL(1), STRING(8), ARRAY(12),
        UINT64(8), INT64(8), FLOAT64(8);

        /** Fewest bytes one value takes in the file: bounds array lengths by what the file can hold. */
        final int minBytes;
        ValueType(int minBytes) { this.minBytes = minBytes; }

        public int id() { return ordinal(); }

        static ValueType byId(int id) { return id >= 0 && id < values().length ? values()[id] : null; }
    }

    /** Arrays longer than this are corrupt: real vocabularies and merge lists have well under a million entries. */
    static final long MAX_ARRAY = 1L << 26;
    static final long MAX_STRING = 1L << 24;
    /** Nested arrays deeper than this are corrupt (and would otherwise recurse without bound). */
    private static final int MAX_NESTING = 4;
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
    private final Map<String, ValueType> types = new LinkedHashMap<>();
    private final Map<String, ValueType> elementTypes = new LinkedHashMap<>();
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
            if (md.containsKey(key)) throw bad("metadata key " + key + " appears twice");
            int typeId = i32("metadata type of " + key);
            ValueType type = ValueType.byId(typeId);
            if (type == null) throw bad("metadata " + key + " has unknown value type " + typeId);
            if (type == ValueType.ARRAY) {
                ValueType elem = ValueType.byId(i32(key));
                if (elem == null) throw bad("metadata " + key + " has an unknown array element type");
                elementTypes.put(key, elem);
                md.put(key, array(elem, key, 0));
            } else {
                md.put(key, value(type, key));
            }
            types.put(key, type);
        }
        metadata = Collections.unmodifiableMap(md);
        long alignment = md.get("general.alignment") instanceof Number n ? n.longValue() : 32;
        if (alignment <= 0 || (alignment & (alignment - 1)) != 0) throw bad("bad general.alignment " + alignment);

        // each tensor record takes at least 32 bytes: a count the rest of the file cannot hold is corrupt
        if (tensorCount * 32 > file.byteSize() - pos) throw bad("absurd tensor count " + tensorCount + " for a " + file.byteSize() + "-byte file (truncated?)");

        record Info(String name, GgmlType type, long[] shape, long offset) {}
        Info[] infos = new Info[(int) tensorCount];
        java.util.Set<String> names = new java.util.HashSet<>();
        for (int i = 0; i < tensorCount; i++) {
            String name = string("tensor name");
            if (!names.add(name)) throw bad("tensor " + name + " appears twice");
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
            if (offset < 0 || offset % alignment != 0) throw bad("tensor " + name + " has offset " + offset + ", not a multiple of the alignment " + alignment);
            if (ne[0] % type.blockSize != 0) throw bad("tensor " + name + " (" + type + ") has rows of " + ne[0] + " elements, not a multiple of its block size " + type.blockSize);
            long[] shape = new long[nDims];
            for (int d = 0; d < nDims; d++) shape[d] = ne[nDims - 1 - d];
            infos[i] = new Info(name, type, shape, offset);
        }
        dataOffset = (pos + alignment - 1) / alignment * alignment;
        Map<String, RawTensor> ts = new LinkedHashMap<>();
        for (Info info : infos) {
            long elements = 1;
            long limit = file.byteSize() * info.type.blockSize; // more elements than that cannot fit in the file
            for (long d : info.shape) {
                if (d > limit / elements) {
                    throw bad("tensor " + info.name + " has absurd shape " + java.util.Arrays.toString(info.shape) + " for a " + file.byteSize() + "-byte file");
                }
                elements *= d;
            }
            long bytes = info.type.byteSize(elements);
            long room = file.byteSize() - dataOffset; // written so that nothing can overflow
            if (bytes > room || info.offset > room - bytes) {
                throw bad("tensor " + info.name + " lies outside the file (offset " + info.offset + ", " + bytes
                        + " bytes; file is " + file.byteSize() + " bytes: truncated?)");
            }
            ts.put(info.name, new RawTensor(info.name, info.type, info.shape, file.asSlice(dataOffset + info.offset, bytes)));
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

    /** The stored type of a metadata value (ARRAY for arrays), or null when the key is absent. */
    public ValueType valueType(String key) { return types.get(key); }

    /** The element type of an array value, or null when the key is absent or not an array. */
    public ValueType elementType(String key) { return elementTypes.get(key); }
    public Map<String, RawTensor> tensors() { return tensors; }
    public long dataOffset() { return dataOffset; }

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
        Object v = metadata.get(key);
        if (v == null) throw bad("missing metadata " + key);
        if (!(v instanceof Number n) || v instanceof Float || v instanceof Double) throw bad("metadata " + key + " is not an integer");
        if (n.longValue() < Integer.MIN_VALUE || n.longValue() > Integer.MAX_VALUE) throw bad("metadata " + key + " is absurd: " + n);
        return n.intValue();
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
        // the longest real strings are chat templates of some kilobytes; a longer one is corruption, not data
        if (len < 0 || len > MAX_STRING) throw bad("absurd string length " + len + " in " + what);
        need(len, what);
        byte[] b = file.asSlice(pos, len).toArray(ValueLayout.JAVA_BYTE);
        pos += len;
        return new String(b, StandardCharsets.UTF_8);
    }

    private Object value(ValueType type, String key) {
        return switch (type) {
            case UINT8 -> { need(1, key); yield (int) (file.get(ValueLayout.JAVA_BYTE, pos++) & 0xFF); }
            case INT8 -> { need(1, key); yield (int) file.get(ValueLayout.JAVA_BYTE, pos++); }
            case UINT16 -> { need(2, key); int v = file.get(I16, pos) & 0xFFFF; pos += 2; yield v; }
            case INT16 -> { need(2, key); int v = file.get(I16, pos); pos += 2; yield v; }
            case UINT32 -> Integer.toUnsignedLong(i32(key));
            case INT32 -> i32(key);
            case FLOAT32 -> { need(4, key); float v = file.get(F32, pos); pos += 4; yield v; }
            case BOOL -> { need(1, key); yield file.get(ValueLayout.JAVA_BYTE, pos++) != 0; }
            case STRING -> string(key);
            case UINT64, INT64 -> u64(key);
            case FLOAT64 -> { need(8, key); double v = file.get(F64, pos); pos += 8; yield v; }
            case ARRAY -> throw new IllegalStateException("arrays are read by array()");
        };
    }

    /** An array of {@code elem} values (the element type id has been read): its length is checked before allocating. */
    private Object array(ValueType elem, String key, int depth) {
        if (depth > MAX_NESTING) throw bad("metadata " + key + " nests arrays more than " + MAX_NESTING + " deep");
        long n = u64(key);
        if (n < 0 || n > MAX_ARRAY || n * elem.minBytes > file.byteSize() - pos) {
            throw bad("metadata " + key + " has absurd array length " + n + " (truncated?)");
        }
        int count = (int) n;
        switch (elem) {
            case STRING -> {
                String[] a = new String[count];
                for (int i = 0; i < count; i++) a[i] = string(key);
                return a;
            }
            case UINT8, INT8, UINT16, INT16, INT32 -> {
                int[] a = new int[count];
                for (int i = 0; i < count; i++) a[i] = (Integer) value(elem, key);
                return a;
            }
            case UINT32 -> { // kept as int bit patterns, like the other 32-bit integer arrays
                int[] a = new int[count];
                for (int i = 0; i < count; i++) a[i] = i32(key);
                return a;
            }
            case UINT64, INT64 -> {
                long[] a = new long[count];
                for (int i = 0; i < count; i++) a[i] = u64(key);
                return a;
            }
            case FLOAT32 -> {
                need(4L * count, key);
                float[] a = new float[count];
                MemorySegment.copy(file, F32, pos, a, 0, count);
                pos += 4L * count;
                return a;
            }
            case FLOAT64 -> {
                double[] a = new double[count];
                for (int i = 0; i < count; i++) a[i] = (Double) value(elem, key);
                return a;
            }
            case BOOL -> {
                boolean[] a = new boolean[count];
                for (int i = 0; i < count; i++) a[i] = (Boolean) value(elem, key);
                return a;
            }
            case ARRAY -> {
                Object[] a = new Object[count];
                for (int i = 0; i < count; i++) {
                    ValueType inner = ValueType.byId(i32(key));
                    if (inner == null) throw bad("metadata " + key + " has an unknown array element type");
                    a[i] = array(inner, key, depth + 1);
                }
                return a;
            }
            default -> throw new IllegalStateException();
        }
    }
}
