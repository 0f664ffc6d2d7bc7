package dev.fastdms.tornado;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** ../shared/assets beside the repository; a missing asset fails the test (never skips it). */
final class Assets {
    private Assets() {}

    static Path asset(String relative) {
        Path root = Path.of(System.getProperty("fastdms.root", "..")).toAbsolutePath().normalize();
        Path p = root.resolve("../shared/assets").resolve(relative).normalize();
        if (!Files.exists(p)) throw new AssertionError("test asset missing: " + p + " (tests need ../shared/assets beside the repository)");
        return p;
    }

    static JsonNode json(String relative) throws IOException {
        return new ObjectMapper().readTree(asset(relative).toFile());
    }

    static int[] ints(JsonNode a) {
        int[] r = new int[a.size()];
        for (int i = 0; i < r.length; i++) r[i] = a.get(i).asInt();
        return r;
    }
}
