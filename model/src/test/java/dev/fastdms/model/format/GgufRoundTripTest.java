package dev.fastdms.model.format;

import dev.fastdms.model.TestAssets;
import dev.fastdms.model.format.GGUF.ValueType;
import dev.fastdms.model.tensor.GgmlType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** GGUFWriter output reads back through GGUF with the same metadata (values and stored types) and tensors. */
class GgufRoundTripTest {
    @TempDir Path tmp;

    @Test
    void everyMetadataKindRoundTrips() throws Exception {
        Path p = tmp.resolve("md.gguf");
        new GGUFWriter()
                .put("u8", ValueType.UINT8, 200).put("i8", ValueType.INT8, -100).put("u16", ValueType.UINT16, 60000)
                .put("i16", ValueType.INT16, -30000).put("u32", ValueType.UINT32, 4_000_000_000L).put("i32", -7)
                .put("f32", 1.5f).put("bool", true).put("str", "héllo ✓").put("u64", 1L << 60).put("i64", -5L).put("f64", Math.PI)
                .put("a_str", new String[]{"a", "", "ü"}).put("a_i32", new int[]{1, -2, 3}).put("a_i64", new long[]{-1, 1L << 40})
                .put("a_f32", new float[]{0.25f, -1e30f}).put("a_f64", new double[]{1e-300}).put("a_bool", new boolean[]{true, false})
                .put("a_u8", ValueType.UINT8, new int[]{0, 255}).put("a_u32", ValueType.UINT32, new int[]{7, -1})
                .put("nested", new Object[]{new int[]{1, 2}, new String[]{"x"}})
                .put("empty", new String[0])
                .write(p);
        try (GGUF g = GGUF.open(p)) {
            var md = g.metadata();
            assertEquals(200, md.get("u8"));
            assertEquals(-100, md.get("i8"));
            assertEquals(60000, md.get("u16"));
            assertEquals(-30000, md.get("i16"));
            assertEquals(4_000_000_000L, md.get("u32"));
            assertEquals(-7, md.get("i32"));
            assertEquals(1.5f, md.get("f32"));
            assertEquals(true, md.get("bool"));
            assertEquals("héllo ✓", md.get("str"));
            assertEquals(1L << 60, md.get("u64"));
            assertEquals(-5L, md.get("i64"));
            assertEquals(Math.PI, md.get("f64"));
            assertArrayEquals(new String[]{"a", "", "ü"}, (String[]) md.get("a_str"));
            assertArrayEquals(new int[]{1, -2, 3}, (int[]) md.get("a_i32"));
            assertArrayEquals(new long[]{-1, 1L << 40}, (long[]) md.get("a_i64"));
            assertArrayEquals(new float[]{0.25f, -1e30f}, (float[]) md.get("a_f32"));
            assertArrayEquals(new double[]{1e-300}, (double[]) md.get("a_f64"));
            assertArrayEquals(new boolean[]{true, false}, (boolean[]) md.get("a_bool"));
            assertArrayEquals(new int[]{0, 255}, (int[]) md.get("a_u8"));
            assertArrayEquals(new int[]{7, -1}, (int[]) md.get("a_u32"));
            Object[] nested = (Object[]) md.get("nested");
            assertArrayEquals(new int[]{1, 2}, (int[]) nested[0]);
            assertArrayEquals(new String[]{"x"}, (String[]) nested[1]);
            assertEquals(0, ((String[]) md.get("empty")).length);
            assertEquals(ValueType.UINT8, g.valueType("u8"));
            assertEquals(ValueType.UINT32, g.valueType("u32"));
            assertEquals(ValueType.UINT64, g.valueType("u64"));
            assertEquals(ValueType.INT64, g.valueType("i64"));
            assertEquals(ValueType.ARRAY, g.valueType("a_u32"));
            assertEquals(ValueType.UINT32, g.elementType("a_u32"));
            assertEquals(ValueType.ARRAY, g.elementType("nested"));
            assertTrue(g.tensors().isEmpty());
        }
    }

    @Test
    void tensorsOfEveryTypeRoundTripAligned() throws Exception {
        Path p = tmp.resolve("t.gguf");
        Random r = new Random(5);
        GgmlType[] types = {GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q6_K, GgmlType.Q5_0, GgmlType.I8};
        byte[][] data = new byte[types.length][];
        GGUFWriter w = new GGUFWriter().put("general.alignment", ValueType.UINT32, 64);
        for (int i = 0; i < types.length; i++) {
            long[] shape = {3, 2, types[i].blockSize * 2L};
            data[i] = new byte[(int) types[i].byteSize(12L * types[i].blockSize)];
            r.nextBytes(data[i]);
            w.tensor("t" + i, types[i], shape, data[i]);
        }
        w.tensor("vec", GgmlType.F32, new long[]{5}, new byte[20]);
        w.write(p);
        try (GGUF g = GGUF.open(p)) {
            assertEquals(3, g.version());
            assertEquals(0, g.dataOffset() % 64);
            for (int i = 0; i < types.length; i++) {
                RawTensor t = g.tensor("t" + i);
                assertEquals(types[i], t.type());
                assertArrayEquals(new long[]{3, 2, types[i].blockSize * 2L}, t.shape());
                assertArrayEquals(data[i], t.data().toArray(ValueLayout.JAVA_BYTE));
                assertEquals(0, (t.data().address() - g.tensor("t0").data().address()) % 64, "aligned to general.alignment");
            }
            assertArrayEquals(new long[]{5}, g.tensor("vec").shape());
        }
    }

    /** Copying a real llama.cpp file with putAll + tensor(RawTensor) reproduces it byte for byte. */
    @Test
    void copyOfStories260KIsIdentical() throws Exception {
        Path src = TestAssets.asset("models/stories260K/stories260K-f32.gguf");
        Path copy = tmp.resolve("copy.gguf");
        try (GGUF g = GGUF.open(src)) {
            GGUFWriter w = new GGUFWriter().putAll(g);
            g.tensors().values().forEach(w::tensor);
            w.write(copy);
        }
        assertEquals(-1L, Files.mismatch(src, copy));
    }

    @Test
    void writerRefusesWhatGgufCannotHold() {
        GGUFWriter w = new GGUFWriter();
        assertThrows(IllegalArgumentException.class, () -> w.put("x", new StringBuilder()));
        assertThrows(IllegalArgumentException.class, () -> w.tensor("q", GgmlType.Q8_0, new long[]{2, 31}, new byte[0]));
        w.tensor("a", GgmlType.F32, new long[]{1}, new byte[4]);
        assertThrows(IllegalArgumentException.class, () -> w.tensor("a", GgmlType.F32, new long[]{1}, new byte[4]));
        Path p = tmp.resolve("short.gguf");
        GGUFWriter bad = new GGUFWriter().tensor("b", GgmlType.F32, new long[]{4}, o -> o.write(new byte[8]));
        assertThrows(IllegalStateException.class, () -> bad.write(p), "a callback writing the wrong size is caught");
    }
}
