package dev.fastdms.cli;

import dev.fastdms.model.BackendProvider;
import picocli.CommandLine.Command;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.PrintWriter;
import java.util.List;

/** Lists where the forward pass can run: the JVM, and each TornadoVM backend's devices with their --backend/--device flags. */
@Command(name = "devices", mixinStandardHelpOptions = true, description = "List the backends and devices a model can run on (--backend, --device).")
public final class DevicesCommand implements Runnable {
    @Spec CommandSpec spec;

    @Override
    public void run() {
        PrintWriter out = spec.commandLine().getOut();
        out.printf("--backend jvm  the JVM (Vector API, %d threads)%n", dev.fastdms.model.tensor.CpuCores.forThisProcess());
        List<BackendProvider> providers = BackendProvider.all();
        if (providers.isEmpty()) {
            out.println("TornadoVM backends (opencl, ptx, spirv): not in this build (install a TornadoVM SDK, run ./fastdms tornado-setup)");
        }
        for (BackendProvider p : providers) {
            String why = p.unavailableReason();
            if (why != null) {
                out.println(String.join(", ", p.names()) + ": unavailable: " + why);
                continue;
            }
            List<String> devices = p.devices();
            if (devices.isEmpty()) out.println(String.join(", ", p.names()) + ": no devices found");
            devices.forEach(out::println);
        }
    }
}
