package dev.fastdms.cli;

import dev.fastdms.cache.KvBudgetExceededException;
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
import java.util.concurrent.atomic.AtomicBoolean;

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

    @Option(names = {"-n", "--max-tokens"}, paramLabel = "N", description = "Tokens per answer at most (default: 512, at most a quarter of the context).")
    Integer maxTokens;

    static final String HELP = "/reset  forget the conversation\n/exit   leave (also Ctrl-D)\n/help   this text\n"
            + "End a line with \\ to continue on the next line.";

    @Override
    public Integer call() throws IOException {
        if (maxTokens != null && maxTokens < 1) throw new IllegalArgumentException("--max-tokens must be >= 1");
        var settings = sampling.toSettings();
        try (Engine engine = Engine.open(model.toEngineOptions(ctx.value), Progress.forLoad(model.noProgress))) {
            ChatSession chat = new ChatSession(engine, system); // refuses a system prompt the context cannot hold
            engine.prepareDecode(Progress.forLoad(model.noProgress));
            // a small model's first answer must leave room for the conversation
            int perAnswer = maxTokens != null ? maxTokens : Math.min(512, Math.max(1, engine.config().contextLength() / 4));
            // dumb(true): a dumb terminal on a non-TTY stdin is expected, not worth JLine's warning lines
            try (Terminal terminal = TerminalBuilder.builder().name("fastdms").system(true).dumb(true).build()) {
                repl(engine, chat, terminal, perAnswer, settings);
            }
        }
        return 0;
    }

    private void repl(Engine engine, ChatSession chat, Terminal terminal, int perAnswer, dev.fastdms.model.Sampler.Settings settings) {
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
        // Ctrl-C while an answer streams stops that answer (JLine handles it itself while a line is read)
        AtomicBoolean interrupted = new AtomicBoolean();
        terminal.handle(Terminal.Signal.INT, sig -> interrupted.set(true));
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
            interrupted.set(false);
            try {
                Generator.Result r = chat.turn(msg, perAnswer, settings, id -> { out.print(stream.next(id)); out.flush(); }, interrupted::get);
                out.println(stream.flush());
                String end = switch (r.stopReason()) {
                    case CONTEXT_FULL -> ", context full: /reset to start over";
                    case CANCELLED -> ", interrupted";
                    default -> "";
                };
                out.printf("[%d tokens, %.1f tok/s, cache %d tokens, CR %.2f%s]%n", r.ids().length, r.decodeTokensPerSecond(),
                        chat.sequence().position(), chat.sequence().kv().compressionRatio(), end);
            } catch (ContextOverflowException e) {
                out.println();
                out.println("(" + e.getMessage() + "; /reset to start over)");
            } catch (KvBudgetExceededException e) {
                // the failed step left the cache half-written: the conversation cannot go on in it
                chat.reset();
                out.println();
                out.println("(" + e.getMessage() + "; the conversation was reset)");
            }
            out.flush();
        }
        out.println();
        out.flush();
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
