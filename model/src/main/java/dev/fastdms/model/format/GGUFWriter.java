package dev.fastdms.model.format;

import dev.fastdms.model.format.GGUF.ValueType;
import dev.fastdms.model.tensor.GgmlType;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.reflect.Array;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Writes GGUF v3. Tensor bytes are produced by a callback at write time, so multi-gigabyte files stream to disk
 * without being held in memory. Tensor data is aligned to {@code general.alignment} when that key is set, else 32.
 *
 * <p>{@link #put(String, Object)} infers the stored type: String, Integer (int32), Long (uint64, int64 when
 * negative), Float, Double, Boolean, Byte (int8), Short (int16), and arrays String[], int[], long[] (int64), float[],
 * double[], boolean[], Object[] of arrays (nested). {@link #put(String, ValueType, Object)} names the type (for arrays:
 * the element type), so values read by {@link GGUF} can be written back with their exact types ({@link #putAll}).
 */
public final class GGUFWriter {
    /** Writes exactly the tensor's byte size to the stream. */
    @FunctionalInterface
    public interface TensorData { void write(OutputStream out) throws IOException; }

    private record Typed(ValueType type, ValueType elementType, Object value) {}
    private record Entry(String name, GgmlType type, long[] shape, TensorData data, long bytes) {}

    private static final int DEFAULT_ALIGN = 32;
    private final Map<String, Typed> metadata = new LinkedHashMap<>();
    private final List<Entry> tensors = new ArrayList<>();
    private final Set<String> names = new HashSet<>();

    /** A metadata value, its GGUF type inferred from the Java type (see the class comment). */
    public GGUFWriter put(String key, Object value) {
        metadata.put(key, infer(key, value));
        return this;
    }

    /** A metadata value of an explicit type; for an array value, {@code type} is its element type. */
    public GGUFWriter put(String key, ValueType type, Object value) {
        if (type == ValueType.ARRAY) throw new IllegalArgumentException(key + ": give the element type of an array");
        metadata.put(key, value.getClass().isArray() ? new Typed(ValueType.ARRAY, type, value) : new Typed(type, null, value));
        return this;
    }

    /** Copies all metadata of a GGUF file with the types it was stored with. */
    public GGUFWriter putAll(GGUF g) {
        for (var e : g.metadata().entrySet()) {
            ValueType t = g.valueType(e.getKey());
            metadata.put(e.getKey(), t == ValueType.ARRAY ? new Typed(t, g.elementType(e.getKey()), e.getValue()) : new Typed(t, null, e.getValue()));
        }
        return this;
    }

    /** @param shape row-major (torch order); written reversed as GGUF's ne[] */
    public GGUFWriter tensor(String name, GgmlType type, long[] shape, TensorData data) {
        if (!names.add(name)) throw new IllegalArgumentException("tensor " + name + " added twice");
        if (shape.length < 1 || shape.length > 4) throw new IllegalArgumentException(name + ": GGUF tensors have 1 to 4 dimensions");
        long n = 1;
        for (long d : shape) {
            if (d <= 0) throw new IllegalArgumentException(name + ": dimension " + d);
            n = Math.multiplyExact(n, d);
        }
        if (shape[shape.length - 1] % type.blockSize != 0) throw new IllegalArgumentException(name + ": rows are not whole " + type + " blocks");
        tensors.add(new Entry(name, type, shape.clone(), data, type.byteSize(n)));
        return this;
    }

    /** A tensor whose bytes are already somewhere (a memory map of another file, an array): copied at write time. */
    public GGUFWriter tensor(String name, GgmlType type, long[] shape, MemorySegment data) {
        return tensor(name, type, shape, out -> copy(data, out));
    }

    public GGUFWriter tensor(String name, GgmlType type, long[] shape, byte[] data) {
        return tensor(name, type, shape, MemorySegment.ofArray(data));
    }

    /** Copies a tensor read from any format (same name, type, shape and bytes). */
    public GGUFWriter tensor(RawTensor t) { return tensor(t.name(), t.type(), t.shape(), t.data()); }

    public void write(Path path) throws IOException {
        int align = alignment();
        try (OutputStream os = new BufferedOutputStream(Files.newOutputStream(path), 1 << 20)) {
            Out out = new Out(os, align);
            out.i32(GGUF.MAGIC);
            out.i32(3);
            out.i64(tensors.size());
            out.i64(metadata.size());
            for (var e : metadata.entrySet()) {
                Typed t = e.getValue();
                out.str(e.getKey());
                out.i32(t.type.id());
                if (t.type == ValueType.ARRAY) array(out, e.getKey(), t.elementType, t.value);
                else scalar(out, e.getKey(), t.type, t.value);
            }
            long offset = 0;
            for (Entry t : tensors) {
                out.str(t.name);
                out.i32(t.shape.length);
                for (int d = t.shape.length - 1; d >= 0; d--) out.i64(t.shape[d]);
                out.i32(t.type.id);
                out.i64(offset);
                offset = (offset + t.bytes + align - 1) / align * align;
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

    private int alignment() {
        Typed a = metadata.get("general.alignment");
        if (a == null) return DEFAULT_ALIGN;
        long v = ((Number) a.value).longValue();
        if (v <= 0 || v > 1 << 20 || (v & (v - 1)) != 0) throw new IllegalArgumentException("general.alignment must be a power of two, not " + v);
        return (int) v;
    }

    static void copy(MemorySegment data, OutputStream out) throws IOException {
        byte[] buf = new byte[(int) Math.min(1 << 20, Math.max(1, data.byteSize()))];
        for (long off = 0; off < data.byteSize(); off += buf.length) {
            int n = (int) Math.min(buf.length, data.byteSize() - off);
            MemorySegment.copy(data, ValueLayout.JAVA_BYTE, off, buf, 0, n);
            out.write(buf, 0, n);
        }
    }

    private static Typed infer(String key, Object v) {
        return switch (v) {
            case String s -> new Typed(ValueType.STRING, null, s);
            case Integer i -> new Typed(ValueType.INT32, null, i);
            case Long l -> new Typed(l < 0 ? ValueType.INT64 : ValueType.UINT64, null, l);
            case Float f -> new Typed(ValueType.FLOAT32, null, f);
            case Double d -> new Typed(ValueType.FLOAT64, null, d);
            case Boolean b -> new Typed(ValueType.BOOL, null, b);
            case Byte b -> new Typed(ValueType.INT8, null, b);
            case Short s -> new Typed(ValueType.INT16, null, s);
            case String[] a -> new Typed(ValueType.ARRAY, ValueType.STRING, a);
            case int[] a -> new Typed(ValueType.ARRAY, ValueType.INT32, a);
            case long[] a -> new Typed(ValueType.ARRAY, ValueType.INT64, a);
            case float[] a -> new Typed(ValueType.ARRAY, ValueType.FLOAT32, a);
            case double[] a -> new Typed(ValueType.ARRAY, ValueType.FLOAT64, a);
            case boolean[] a -> new Typed(ValueType.ARRAY, ValueType.BOOL, a);
            case Object[] a -> new Typed(ValueType.ARRAY, ValueType.ARRAY, a);
            default -> throw new IllegalArgumentException(key + ": no GGUF type for " + v.getClass().getSimpleName());
        };
    }

    private static void scalar(Out out, String key, ValueType type, Object v) throws IOException {
        switch (type) {
            case STRING -> out.str((String) v);
            case BOOL -> out.write((Boolean) v ? 1 : 0);
            case FLOAT32 -> out.i32(Float.floatToRawIntBits(((Number) v).floatValue()));
            case FLOAT64 -> out.i64(Double.doubleToRawLongBits(((Number) v).doubleValue()));
            case UINT8, INT8 -> out.write(((Number) v).intValue());
            case UINT16, INT16 -> { int x = ((Number) v).intValue(); out.write(x); out.write(x >> 8); }
            case UINT32, INT32 -> out.i32(((Number) v).intValue());
            case UINT64, INT64 -> out.i64(((Number) v).longValue());
            case ARRAY -> throw new IllegalArgumentException(key + ": nested value is not an array");
        }
    }

    /** Element type id, length, elements; nested arrays carry their own element type, inferred from the Java array. */
    private static void array(Out out, String key, ValueType elem, Object a) throws IOException {
        if (a == null || !a.getClass().isArray()) throw new IllegalArgumentException(key + ": expected an array");
        int n = Array.getLength(a);
        out.i32(elem.id());
        out.i64(n);
        for (int i = 0; i < n; i++) {
            Object x = Array.get(a, i);
            if (elem == ValueType.ARRAY) {
                Typed inner = infer(key, x);
                if (inner.type != ValueType.ARRAY) throw new IllegalArgumentException(key + ": an array of arrays holds a " + x.getClass().getSimpleName());
                array(out, key, inner.elementType, x);
            } else {
                scalar(out, key, elem, x);
            }
        }
    }

    private static final class Out extends OutputStream {
        final OutputStream os;
        final int align;
        long count;
        final ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        Out(OutputStream os, int align) { this.os = os; this.align = align; }
        @Override public void write(int x) throws IOException { os.write(x); count++; }
        @Override public void write(byte[] a, int off, int len) throws IOException { os.write(a, off, len); count += len; }
        void i32(int x) throws IOException { b.clear(); b.putInt(x); write(b.array(), 0, 4); }
        void i64(long x) throws IOException { b.clear(); b.putLong(x); write(b.array(), 0, 8); }
        void str(String s) throws IOException { byte[] u = s.getBytes(StandardCharsets.UTF_8); i64(u.length); write(u, 0, u.length); }
        void pad() throws IOException { while (count % align != 0) write(0); }
    }
}
