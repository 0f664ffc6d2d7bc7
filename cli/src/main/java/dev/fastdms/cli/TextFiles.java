package dev.fastdms.cli;

import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Text files a user names on the command line: missing or non-UTF-8 files are bad input (exit 2), not I/O errors. */
final class TextFiles {
    private TextFiles() {}

    static String readUtf8(Path file, String flag) throws IOException {
        if (!Files.isRegularFile(file)) throw new IllegalArgumentException(file + ": no such file (" + flag + ")");
        try {
            return Files.readString(file);
        } catch (CharacterCodingException e) {
            throw new IllegalArgumentException(file + ": not valid UTF-8 text (" + flag + ")");
        }
    }
}
