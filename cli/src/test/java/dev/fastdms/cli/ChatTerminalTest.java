package dev.fastdms.cli;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/** The chat REPL in a real pseudo-terminal (tmux), typed at as a user would. Needs tmux (.ci/run installs it). */
class ChatTerminalTest {
    final String session = "fastdms-chat-test-" + ProcessHandle.current().pid();

    static String sh(String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        p.waitFor();
        return out;
    }

    String screen() throws Exception { return sh("tmux", "capture-pane", "-p", "-J", "-S", "-200", "-t", session); }

    void keys(String... k) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("tmux", "send-keys", "-t", session));
        cmd.addAll(List.of(k));
        sh(cmd.toArray(new String[0]));
    }

    String waitFor(Pattern p, int count) throws Exception {
        long end = System.currentTimeMillis() + 60_000;
        String s = "";
        while (System.currentTimeMillis() < end) {
            s = screen();
            Matcher m = p.matcher(s);
            int n = 0;
            while (m.find()) n++;
            if (n >= count) return s;
            Thread.sleep(200);
        }
        fail("timed out waiting for " + p + " x" + count + "; screen:\n" + s);
        return s;
    }

    @AfterEach
    void kill() throws Exception { sh("tmux", "kill-session", "-t", session); }

    /** Starts `fastdms chat ARGS` in a tmux session and waits for its banner. */
    void startChat(Path home, String args) throws Exception {
        try {
            assertEquals(0, new ProcessBuilder("tmux", "-V").start().waitFor(), "tmux is required for this test");
        } catch (IOException e) {
            fail("tmux is required for this test (apt-get install tmux)");
        }
        String java = ProcessHandle.current().info().command().orElseThrow();
        Path script = home.resolve("chat.sh");
        // the shell survives a Ctrl-C (a trap, not an ignore, so the JVM keeps the default) to report the exit code
        Files.writeString(script, "#!/bin/sh\ntrap : INT\n'" + java + "' --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED"
                + " -Duser.home='" + home + "' -Dfastdms.root='" + System.getProperty("fastdms.root") + "'"
                + " -cp '" + System.getProperty("java.class.path") + "' dev.fastdms.cli.Main chat " + args + " --no-progress 2>&1\n"
                + "echo \"[exit $?]\"; sleep 30\n");
        script.toFile().setExecutable(true);
        sh("tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "60", script.toString());
        waitFor(Pattern.compile("fastdms chat: .*plain format"), 1);
    }

    @Test
    void ctrlCStopsTheAnswerAndKeepsTheConversation(@TempDir Path home) throws Exception {
        startChat(home, "-n 480");
        Pattern stats = Pattern.compile("\\[(\\d+) tokens, [\\d.]+ tok/s, cache (\\d+) tokens, CR [\\d.]+([^\\]]*)]");
        // the Ctrl-C must land while the answer streams: on a loaded machine the whole answer (under 2 s) can be written
        // before tmux delivers it, so a turn that ran to its end is reset and tried again (a Ctrl-C at the prompt is ignored)
        Matcher m = null;
        int turns = 0;
        for (int attempt = 1; attempt <= 5; attempt++) {
            keys("Once upon a time", "Enter");
            // as soon as the answer starts streaming
            long end = System.currentTimeMillis() + 30_000;
            String screen = "";
            while (System.currentTimeMillis() < end && count(screen = screen(), "> Once upon a time\n") < attempt) Thread.sleep(20);
            boolean late = count(screen, "tok/s, cache") >= attempt; // this answer already ended
            if (!late) keys("C-c");
            String s = waitFor(Pattern.compile(stats.pattern() + "|\\[exit \\d+]"), ++turns);
            assertFalse(s.contains("[exit "), "Ctrl-C ended the program:\n" + s);
            m = last(stats, s);
            if (m.group(3).contains("interrupted")) break;
            // C-u clears whatever a Ctrl-C that arrived at the prompt left in the line editor
            keys("C-u", "/reset", "Enter");
            waitFor(Pattern.compile("\\(conversation reset\\)"), attempt);
        }
        assertTrue(Integer.parseInt(m.group(1)) < 480 && m.group(3).contains("interrupted"), "the answer stopped early: " + m.group());
        int cache = Integer.parseInt(m.group(2));
        keys("The dog ran", "Enter");
        m = last(stats, waitFor(stats, turns + 1));
        assertTrue(Integer.parseInt(m.group(2)) > cache, "the next turn continues the conversation: " + m.group());
        keys("/exit", "Enter");
        waitFor(Pattern.compile("\\[exit 0]"), 1);
    }

    private static int count(String s, String what) {
        int n = 0;
        for (int i = s.indexOf(what); i >= 0; i = s.indexOf(what, i + 1)) n++;
        return n;
    }

    /** The last match of p in s (there must be one). */
    private static Matcher last(Pattern p, String s) {
        Matcher m = p.matcher(s);
        int start = -1;
        while (m.find()) start = m.start();
        assertTrue(start >= 0, "no " + p + " in:\n" + s);
        m.find(start);
        return m;
    }

    @Test
    void chatKeepsTheConversationInTheCache(@TempDir Path home) throws Exception {
        startChat(home, "-n 40");

        keys("/help", "Enter");
        waitFor(Pattern.compile("/reset\\s+forget the conversation"), 1);

        Pattern stats = Pattern.compile("\\[(\\d+) tokens, [\\d.]+ tok/s, cache (\\d+) tokens");
        keys("Once upon a time", "Enter");
        String s = waitFor(stats, 1);
        // a multi-line message: the line ends with a backslash
        keys("Lily saw a big dog\\", "Enter");
        waitFor(Pattern.compile("\\.\\.\\. "), 1);
        keys("and she smiled", "Enter");
        s = waitFor(stats, 2);
        Matcher m = stats.matcher(s);
        List<Integer> cache = new ArrayList<>();
        while (m.find()) cache.add(Integer.parseInt(m.group(2)));
        assertTrue(cache.get(1) > cache.get(0) + 5, "second turn is prefilled on top of the first: " + cache);

        keys("/reset", "Enter");
        waitFor(Pattern.compile("\\(conversation reset\\)"), 1);
        keys("Once upon a time", "Enter");
        s = waitFor(stats, 3);
        m = stats.matcher(s);
        cache.clear();
        while (m.find()) cache.add(Integer.parseInt(m.group(2)));
        assertEquals(cache.get(0), cache.get(2), "after /reset the same first message fills the cache the same way: " + cache);

        // history: arrow-up recalls the last message
        keys("Up");
        waitFor(Pattern.compile("> Once upon a time\\s*$", Pattern.MULTILINE), 1);
        keys("C-u", "/exit", "Enter");
        waitFor(Pattern.compile("\\[exit 0]"), 1); // /exit ends the program
        assertTrue(Files.readString(home.resolve(".fastdms_history")).contains("Lily saw a big dog"), "history file written");
    }
}
