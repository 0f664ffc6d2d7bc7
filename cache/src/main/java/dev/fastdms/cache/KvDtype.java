package dev.fastdms.cache;

/** Element type of stored keys and values. */
public enum KvDtype {
    F32, F16, BF16, FP8_E4M3, Q8;
}
