package dev.fastdms.model;

import dev.fastdms.cache.DmsConfig;
import dev.fastdms.cache.EvictionPolicy;
import dev.fastdms.cache.KvBudget;
import dev.fastdms.cache.KvDtype;

/**
 * How a sequence's KV cache is stored and compressed: element type and eviction rule.
 *
 * @param dms    the DMS rule, or null
 * @param policy a training-free eviction policy, or null (at most one of dms and policy is set)
 * @param budget a byte limit shared by all sequences, or null
 */
public record KvSettings(KvDtype dtype, DmsConfig dms, EvictionPolicy.Spec policy, KvBudget budget) {
    public KvSettings(KvDtype dtype, DmsConfig dms) { this(dtype, dms, null, null); }

    /** A short name: none, dms:w=..., knorm:cr=4, ... with the dtype. */
    public String describe() {
        String d = ",dtype=" + dtype.name().toLowerCase();
        if (policy != null) return policy.describe() + d;
        if (dms != null) return "dms:w=" + dms.window() + ",scale=" + dms.alphaScale() + ",offset=" + dms.alphaOffset()
                + ",conv=" + dms.convention().name().toLowerCase() + d;
        return "none:" + d.substring(1);
    }

    /** Training-free policy names as the CLI spells them. */
    public static EvictionPolicy.Kind policyKind(String name) {
        return switch (name) {
            case "sink-window" -> EvictionPolicy.Kind.SINK_WINDOW;
            case "knorm" -> EvictionPolicy.Kind.KNORM;
            case "tova" -> EvictionPolicy.Kind.TOVA;
            case "h2o" -> EvictionPolicy.Kind.H2O;
            case "snapkv" -> EvictionPolicy.Kind.SNAPKV;
            default -> null;
        };
    }

    public static final java.util.List<String> POLICIES = java.util.List.of("none", "dms", "sink-window", "knorm", "tova", "h2o", "snapkv");

    /** Overrides given on the command line; null fields keep what the checkpoint says. */
    public record DmsOverrides(Integer window, Float alphaScale, Float alphaOffset, DmsConfig.Convention convention) {
        public boolean any() { return window != null || alphaScale != null || alphaOffset != null || convention != null; }
    }

    /** Window used when DMS is forced on a model whose checkpoint carries no DMS parameters. */
    public static final int DEFAULT_WINDOW = 256;

    /**
     * The effective rule: {@code policy} "none" turns DMS off; "dms" turns it on (checkpoint parameters, then
     * overrides, then defaults); null means "dms when the checkpoint carries DMS parameters or any override is given".
     */
    public static DmsConfig resolveDms(String policy, DmsConfig fromCheckpoint, DmsOverrides o) {
        if ("none".equals(policy)) return null;
        boolean on = "dms".equals(policy) || fromCheckpoint != null || (o != null && o.any());
        if (!on) return null;
        DmsConfig base = fromCheckpoint != null ? fromCheckpoint
                : new DmsConfig(DEFAULT_WINDOW, DmsConfig.DEFAULT_ALPHA_SCALE, DmsConfig.DEFAULT_ALPHA_OFFSET, DmsConfig.Convention.NVIDIA);
        if (o == null) return base;
        return new DmsConfig(o.window() != null ? o.window() : base.window(),
                o.alphaScale() != null ? o.alphaScale() : base.alphaScale(),
                o.alphaOffset() != null ? o.alphaOffset() : base.alphaOffset(),
                o.convention() != null ? o.convention() : base.convention());
    }
}
