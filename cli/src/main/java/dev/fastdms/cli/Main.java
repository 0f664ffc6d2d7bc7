package dev.fastdms.cli;

import dev.fastdms.model.ContextOverflowException;
import dev.fastdms.model.format.ModelFormatException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.PrintWriter;

/** Entry point: `fastdms <command>`. Errors a user can cause end with one line on stderr and a non-zero exit. */
@Command(name = "fastdms", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = "LLM inference on the JVM with a DMS-compressed KV cache.",
        subcommands = {GenerateCommand.class, ChatCommand.class, InspectCommand.class, EvalCommand.class, BenchCommand.class, ServeCommand.class, SynthCommand.class, TrainDmsCommand.class, DevicesCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Runnable {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    public static void main(String[] args) {
        System.exit(run(args, new PrintWriter(System.out, true), new PrintWriter(System.err, true)));
    }

    /** Runs the CLI with the given streams (tests call this) and returns the exit code. */
    public static int run(String[] args, PrintWriter out, PrintWriter err) {
        return execute(new CommandLine(new Main()), args, out, err);
    }

    /** Runs {@code cl} with this CLI's error handling: one line on stderr and the documented exit code. */
    static int execute(CommandLine cl, String[] args, PrintWriter out, PrintWriter err) {
        cl.setOut(out);
        cl.setErr(err);
        cl.setExecutionExceptionHandler((ex, cmd, parsed) -> fail(ex, err));
        cl.setParameterExceptionHandler((ex, a) -> {
            err.println("fastdms: " + ex.getMessage() + " (see fastdms " + commandName(ex.getCommandLine()) + "--help)");
            return 2;
        });
        try {
            return cl.execute(args);
        } catch (Throwable t) { // picocli hands Errors (out of memory, stack overflow) on instead of to the handler
            return fail(t, err);
        }
    }

    private static int fail(Throwable ex, PrintWriter err) {
        err.println("fastdms: " + userMessage(ex));
        if (Boolean.getBoolean("fastdms.debug")) ex.printStackTrace(err);
        err.flush();
        return exitCode(ex);
    }

    private static String commandName(CommandLine cl) {
        String n = cl.getCommandName();
        return "fastdms".equals(n) ? "" : n + " ";
    }

    static String userMessage(Throwable ex) {
        if (ex instanceof OutOfMemoryError) {
            return "out of memory: " + ex.getMessage() + " (use a smaller --ctx, a smaller model, or more heap via FASTDMS_JAVA_OPTS=-Xmx...)";
        }
        String m = ex.getMessage();
        if (m == null || m.isBlank()) m = ex.getClass().getSimpleName();
        return m.replace('\n', ' ');
    }

    /** Exit code when the JVM runs out of memory (heap, or an array larger than the VM allows). */
    static final int OUT_OF_MEMORY = 6;

    static int exitCode(Throwable ex) {
        if (ex instanceof ModelFormatException) return 3;
        if (ex instanceof ContextOverflowException) return 4;
        if (ex instanceof dev.fastdms.cache.KvBudgetExceededException) return 5;
        if (ex instanceof IllegalArgumentException) return 2;
        if (ex instanceof OutOfMemoryError) return OUT_OF_MEMORY;
        return 1;
    }

    @Override
    public void run() { spec.commandLine().usage(spec.commandLine().getOut()); }

    static final class Version implements CommandLine.IVersionProvider {
        @Override public String[] getVersion() {
            String v = Main.class.getPackage().getImplementationVersion();
            return new String[]{"fastdms " + (v == null ? "dev" : v) + " (Java " + Runtime.version() + ")"};
        }
    }
}
