package dev.fastdms.model;

import java.nio.file.Files;
import java.nio.file.Path;

/** Locates ../shared/assets relative to the repository root; a missing asset fails the test (never skips it). */
public final class TestAssets {
    private TestAssets() {}

    public static Path root() {
        return Path.of(System.getProperty("fastdms.root", ".")).toAbsolutePath().normalize();
    }

    public static Path asset(String relative) {
        Path p = root().resolve("../shared/assets").resolve(relative).normalize();
        if (!Files.exists(p)) throw new AssertionError("test asset missing: " + p + " (tests need ../shared/assets beside the repository)");
        return p;
    }
}
