package dev.fastdms.cli;

import dev.fastdms.model.Engine;

/** Engine options for serving: a KV budget always (admission needs one) and a device slot per sequence. */
final class ServeOptions {
    private ServeOptions() {}

    /** Without --kv-budget the JVM backend gets half the heap; device backends hold one cache slot per sequence. */
    static Engine.Options withServeDefaults(Engine.Options o, int maxSeqs) {
        boolean jvm = o.backend() == null || "jvm".equals(o.backend());
        long budget = o.budgetBytes() > 0 || !jvm ? o.budgetBytes() : Runtime.getRuntime().maxMemory() / 2;
        return new Engine.Options(o.model(), o.tokenizer(), o.ctx(), o.threads(), o.backend(), o.kvDtype(), o.kvPolicy(), o.dms(),
                o.targetCr(), o.budgetTokens(), budget, o.device(), o.kvSlots(), jvm ? 1 : maxSeqs, o.deviceRows());
    }
}
