package dev.fastdms.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.fastdms.model.train.TrainStats;

import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** train-dms --log: one JSON object per optimizer step, flushed as written so a run can be watched (tail -f) or plotted. */
final class TrainLog implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final BufferedWriter out;

    private TrainLog(BufferedWriter out) { this.out = out; }

    /** A log at {@code file}, or one that writes nothing when it is null. */
    static TrainLog open(Path file) throws IOException {
        return new TrainLog(file == null ? null : Files.newBufferedWriter(file));
    }

    static ObjectNode json(TrainStats s) {
        ObjectNode o = JSON.createObjectNode();
        o.put("step", s.step());
        o.put("loss", s.loss());
        o.put("kl", s.kl());
        o.put("compression_loss", s.compressionLoss());
        o.put("eviction_rate", s.evictionRate());
        o.put("target_eviction_rate", s.targetEvictionRate());
        o.put("min_head_eviction_rate", s.minHeadEvictionRate());
        o.put("compression_ratio", s.compressionRatio());
        o.put("seconds", s.seconds());
        return o;
    }

    void write(TrainStats s) throws IOException {
        if (out == null) return;
        out.write(JSON.writeValueAsString(json(s)));
        out.newLine();
        out.flush();
    }

    @Override
    public void close() throws IOException { if (out != null) out.close(); }
}
