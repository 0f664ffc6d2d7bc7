package dev.fastdms.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** fastdms bench on the bundled model: row structure, baseline pairing, KV accounting and the plot (no timing asserts). */
class BenchCommandTest {
    @Test
    void rowsPairTheDenseBaselineWithTheCompressedCache(@TempDir Path tmp) throws Exception {
        StringWriter out = new StringWriter(), err = new StringWriter();
        Path png = tmp.resolve("b.png");
        int code = Main.run(new String[]{"bench", "--ctx", "128,300", "--batch", "1,3", "--gen", "3", "--kv-dtype", "fp8",
                "--dms-window", "16", "--dms-evict-fraction", "0.75", "--fill", "random", "--json", "--plot", png.toString()},
                new PrintWriter(out, true), new PrintWriter(err, true));
        assertEquals(0, code, err.toString());
        List<JsonNode> rows = new ArrayList<>();
        for (String line : out.toString().strip().split("\n")) rows.add(new ObjectMapper().readTree(line));
        assertEquals(8, rows.size());
        for (int i = 0; i < rows.size(); i += 2) {
            JsonNode dense = rows.get(i), dms = rows.get(i + 1);
            assertEquals("dense-bf16", dense.get("config").asText());
            assertTrue(dms.get("config").asText().startsWith("dms:w=16"));
            assertEquals(dense.get("ctx"), dms.get("ctx"));
            assertEquals(dense.get("kv_bytes_dense_bf16"), dms.get("kv_bytes_dense_bf16"));
            int ctx = dense.get("ctx").asInt(), c = dense.get("batch").asInt();
            // every sequence saw ctx filled tokens plus the decode steps: 2 * 5 layers * 4 heads * 8 dims * 2 bytes each
            assertEquals((long) c * (ctx + 3) * 2 * 5 * 4 * 8 * 2, dense.get("kv_bytes_dense_bf16").asLong());
            assertEquals(1.0, dense.get("compression_ratio").asDouble(), 1e-9);
            // 3/4 of tokens flagged: outside the window about 1 in 4 stays
            assertTrue(dms.get("compression_ratio").asDouble() > 1.5, dms.toString());
            assertTrue(dms.get("kv_smaller_x").asDouble() > 1.0, dms.toString());
            for (String k : new String[]{"prefill_tokens_per_s", "decode_tokens_per_s", "heap_bytes", "offheap_bytes", "decode_faster_x", "fill"}) assertTrue(dms.has(k), k);
            assertTrue(dms.get("decode_tokens_per_s").asDouble() > 0);
        }
        assertTrue(Files.size(png) > 1000, "plot written");
        StringWriter pf = new StringWriter(), pe = new StringWriter();
        assertEquals(0, Main.run(new String[]{"bench", "--ctx", "64", "--batch", "2", "--gen", "2", "--fill", "prefill", "--json", "--no-progress"},
                new PrintWriter(pf, true), new PrintWriter(pe, true)), pe.toString());
        for (String line : pf.toString().strip().split("\n")) {
            JsonNode o = new ObjectMapper().readTree(line);
            assertEquals("prefill", o.get("fill").asText());
            assertTrue(o.get("prefill_tokens_per_s").asDouble() > 0);
        }
        // at the model's full context (512) the fill leaves room for the generated tokens
        StringWriter full = new StringWriter(), fe = new StringWriter();
        assertEquals(0, Main.run(new String[]{"bench", "--ctx", "512", "--gen", "4", "--fill", "random", "--json", "--no-baseline"},
                new PrintWriter(full, true), new PrintWriter(fe, true)), fe.toString());
        assertEquals(512L * 2 * 5 * 4 * 8 * 2, new ObjectMapper().readTree(full.toString().strip()).get("kv_bytes_dense_bf16").asLong());
        StringWriter e2 = new StringWriter();
        assertEquals(2, Main.run(new String[]{"bench", "--fill", "zeros"}, new PrintWriter(new StringWriter()), new PrintWriter(e2)));
        assertTrue(e2.toString().contains("--fill must be prefill or random"));
    }
}
