package dev.fastdms.model;

/**
 * What a device backend's forward pass tells a benchmark about its steps: kernel launches per step, and device
 * kernel time from its profiler, which is switched on only for a profiled pass kept apart from the timed one.
 */
public interface DeviceProfile {
    /** Kernel launches one forward step makes. */
    int launchesPerStep();

    /** Graph (or other host-side) executions one forward step makes: each costs host work beside its launches. */
    default int executionsPerStep() { return launchesPerStep(); }

    /** Switches the device profiler on or off (it adds host work per kernel: keep it off while timing). */
    void profiling(boolean on);

    /** Device kernel nanoseconds the profiler saw so far (only while it was on). */
    long kernelNanos();
}
