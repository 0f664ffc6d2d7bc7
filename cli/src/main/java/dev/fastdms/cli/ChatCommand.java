package dev.fastdms.cli;

import dev.fastdms.model.ChatSession;
import dev.fastdms.model.ContextOverflowException;
import dev.fastdms.model.Engine;
import dev.fastdms.model.Generator;
import org.jline.reader.EndOfFileException;
import org.jline.reader.LineReader;
import org.jline.reader.LineReaderBuilder;
import org.jline.reader.UserInterruptException;
import org.jline.reader.impl.DefaultParser;
import org.jline.terminal.Terminal;
import org.jline.terminal.TerminalBuilder;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "chat", mixinStandardHelpOptions = true,
        description = {"Interactive chat (JLine: history, line editing).",
                "End a line with \\ to continue the message on the next line. Commands: /reset, /exit, /help.",
                "The conversation stays in the KV cache: each turn prefills only its new tokens."})
final class ChatCommand implements Callable<Integer> {
    @Mixin ModelOptions model = new ModelOptions();
    @Mixin ModelOptions.Ctx ctx = new ModelOptions.Ctx();
    @Mixin SamplingOptions sampling = new SamplingOptions();

    @Option(names = "--system", paramLabel = "TEXT", description = "System prompt.")
    String system;

    @Option(names = {"-n", "--max-tokens"}, paramLabel = "N", defaultValue = "512", description = "Tokens per answer at most (default 512).")
    int maxTokens;

    static final String HELP = "/reset  forget the conversation\n/exit   leave (also Ctrl-D)\n/help   this text\n"
            + "End a line with \\ to continue on the next line.";

    @Override
    public Integer call() throws IOException {
        try (Engine engine = Engine.open(model.toEngineOptions(ctx.value), Progress.forLoad(model.noProgress));
             Terminal terminal = TerminalBuilder.builder().name("fastdms").system(true).build()) {
            // Chat text is prose: no shell-style quoting or escapes (an apostrophe must not open a quote); a trailing
            // backslash is our own line continuation.
            DefaultParser parser = new DefaultParser();
            parser.setEscapeChars(new char[0]);
            parser.setQuoteChars(new char[0]);
            LineReader reader = LineReaderBuilder.builder().terminal(terminal).parser(parser)
                    .variable(LineReader.HISTORY_FILE, Path.of(System.getProperty("user.home"), ".fastdms_history"))
                    .variable(LineReader.SECONDARY_PROMPT_PATTERN, "... ")
                    .build();
            PrintWriter out = terminal.writer();
            ChatSession chat = new ChatSession(engine, system);
            var settings = sampling.toSettings();
            out.println("fastdms chat: " + engine.file().path().getFileName() + " (" + engine.config().architecture()
                    + ", " + engine.chatFormat().name() + " format" + (engine.kvSettings().dms() != null ? ", DMS on" : "") + "). /help for commands.");
            out.flush();
            while (true) {
                String msg;
                try {
                    msg = readMessage(reader);
                } catch (UserInterruptException e) {
                    continue;
                } catch (EndOfFileException e) {
                    break;
                }
                String cmd = msg.strip();
                if (cmd.isEmpty()) continue;
                if (cmd.equals("/exit") || cmd.equals("/quit")) break;
                if (cmd.equals("/help")) { out.println(HELP); out.flush(); continue; }
                if (cmd.equals("/reset")) { chat.reset(); out.println("(conversation reset)"); out.flush(); continue; }
                if (cmd.startsWith("/")) { out.println("unknown command " + cmd + " (/help)"); out.flush(); continue; }
                var stream = engine.textStream();
                try {
                    Generator.Result r = chat.turn(msg, maxTokens, settings, id -> { out.print(stream.next(id)); out.flush(); });
                    out.println(stream.flush());
                    out.printf("[%d tokens, %.1f tok/s, cache %d tokens, CR %.2f]%n", r.ids().length, r.decodeTokensPerSecond(),
                            chat.sequence().position(), chat.sequence().kv().compressionRatio());
                } catch (ContextOverflowException e) {
                    out.println();
                    out.println("(" + e.getMessage() + "; /reset to start over)");
                }
                out.flush();
            }
            out.println();
            out.flush();
        }
        return 0;
    }

    /** One message: lines ending in a backslash continue on the next line. */
    static String readMessage(LineReader reader) {
        StringBuilder sb = new StringBuilder();
        String prompt = "> ";
        while (true) {
            String line = reader.readLine(prompt);
            if (line.endsWith("\\")) {
                sb.append(line, 0, line.length() - 1).append('\n');
                prompt = "... ";
            } else {
                sb.append(line);
                return sb.toString();
            }
        }
    }
}
