package dev.fastdms.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.MatchResult;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/** The chat REPL with its stdin piped (no TTY), in a child JVM: what a script or a CI job sees. */
class ChatPipeTest {
    record Chat(int code, String out, String err) {}

    static Chat chat(Path home, String input, String... args) throws Exception {
        String java = ProcessHandle.current().info().command().orElseThrow();
        List<String> cmd = new ArrayList<>(List.of(java, "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-Duser.home=" + home, "-Dfastdms.root=" + System.getProperty("fastdms.root"),
                "-cp", System.getProperty("java.class.path"), "dev.fastdms.cli.Main", "chat", "--no-progress"));
        cmd.addAll(List.of(args));
        Path errFile = home.resolve("stderr.txt");
        Process p = new ProcessBuilder(cmd).redirectError(errFile.toFile()).start();
        p.getOutputStream().write(input.getBytes(StandardCharsets.UTF_8));
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail("chat did not end; stdout:\n" + out);
        }
        String e = Files.readString(errFile);
        return new Chat(p.exitValue(), out, e);
    }

    static final Pattern STATS = Pattern.compile("\\[(\\d+) tokens, [\\d.]+ tok/s, cache (\\d+) tokens, CR [\\d.]+([^\\]]*)]");

    static List<MatchResult> stats(String out) { return STATS.matcher(out).results().toList(); }

    /** JVM warnings about incubator modules are not ours; anything else on stderr is. */
    static String ourStderr(String err) {
        return err.lines().filter(l -> !l.contains("Using incubator modules")).reduce("", (a, b) -> a + b + "\n");
    }

    @Test
    void aPipedChatPrintsNoTerminalWarningsAndTheDefaultAnswerLeavesRoom(@TempDir Path home) throws Exception {
        Chat c = chat(home, "Once upon a time\n/exit\n");
        assertEquals(0, c.code(), c.err());
        assertEquals("", ourStderr(c.err()), "stderr of a piped chat");
        List<MatchResult> s = stats(c.out());
        assertEquals(1, s.size(), c.out());
        // stories260K's context is 512: the first answer must not take it all
        assertTrue(Integer.parseInt(s.get(0).group(1)) <= 512 / 4, c.out());
        assertFalse(s.get(0).group(3).contains("context full"), c.out());
    }

    @Test
    void theStatsLineSaysWhenTheContextIsFull(@TempDir Path home) throws Exception {
        Chat c = chat(home, "Once upon a time\n/exit\n", "--ctx", "48", "-n", "1000");
        assertEquals(0, c.code(), c.err());
        List<MatchResult> s = stats(c.out());
        assertEquals(1, s.size(), c.out());
        assertEquals("48", s.get(0).group(2), c.out());
        assertTrue(s.get(0).group(3).contains("context full"), c.out());
    }

    @Test
    void aSystemPromptLongerThanTheContextIsRefusedUpFront(@TempDir Path home) throws Exception {
        Chat c = chat(home, "Once upon a time\n/exit\n", "--ctx", "32", "--system", "Lily and Ben went to the park. ".repeat(10));
        assertEquals(4, c.code(), c.out() + c.err());
        assertTrue(ourStderr(c.err()).contains("system prompt"), c.err());
        assertEquals(1, ourStderr(c.err()).strip().lines().count(), c.err());
        assertFalse(c.out().contains("fastdms chat:"), "refused before the REPL starts: " + c.out());
    }

    @Test
    void aKvBudgetExceededMidChatIsReportedInTheRepl(@TempDir Path home) throws Exception {
        Chat c = chat(home, "Once upon a time\nThe dog ran\n/exit\n", "--kv-budget", "20K", "-n", "40");
        assertEquals(0, c.code(), c.out() + c.err());
        assertTrue(c.out().contains("KV cache budget exceeded"), c.out());
        assertTrue(c.out().contains("conversation was reset"), c.out());
        assertEquals("", ourStderr(c.err()));
    }

    @Test
    void resetReleasesTheOldSequence(@TempDir Path home) throws Exception {
        // one stories260K sequence of up to 256 tokens takes about 370 KB here; two do not fit 500K
        Chat c = chat(home, "Once upon a time\n/reset\nOnce upon a time\n/reset\nOnce upon a time\n/exit\n", "--kv-budget", "500K", "-n", "40");
        assertEquals(0, c.code(), c.out() + c.err());
        assertFalse(c.out().contains("budget exceeded"), c.out());
        List<MatchResult> s = stats(c.out());
        assertEquals(3, s.size(), c.out());
        assertEquals(s.get(0).group(2), s.get(2).group(2), "each conversation starts from an empty cache: " + c.out());
    }
}
