package dev.fastdms.tornado;

/**
 * Where things sit in the small integer arrays every kernel reads: the model's constants ({@code cfg}, uploaded once)
 * and one step's rows ({@code step}, uploaded per step). Kernels index these arrays instead of taking a dozen scalar
 * arguments each (TornadoVM tasks take at most 20).
 */
final class Layout {
    private Layout() {}

    // cfg: constants of the model and of the device cache
    static final int DIM = 0, Q_DIM = 1, KV_DIM = 2, HEAD_DIM = 3, HEADS = 4, KV_HEADS = 5, FFN = 6, VOCAB = 7,
            LAYERS = 8, MAX_ROWS = 9, SLOTS = 10, RING = 11, KV_TYPE = 12, MAX_SPLITS = 13, ROPE_HALF = 14,
            LOG_CTX = 15, LOG_ON = 16, MAX_SEQS = 17, KV_BLOCKS = 18, GROUP = 19, CFG_SIZE = 20;
    // cfgF: float constants
    static final int EPS = 0, ATTN_SCALE = 1, CFGF_SIZE = 2;

    // ctrl: device-side counters: the layer every kernel of a pass reads, and the next one, which the FFN's gate/up
    // kernel writes and the down projection (reading LAYER_NEXT - 1) copies back, so no kernel writes what it reads
    static final int LAYER = 0, LAYER_NEXT = 1, CTRL_SIZE = 2;

    // status (the one array that comes back every step): four status words, then the step's greedy picks
    // (PICKED + row), so one device-to-host read brings both
    static final int STATUS_FULL = 0, STATUS_FULL_HEAD = 1, STATUS_BAD_INPUT = 2, STATUS_NAN = 3, STATUS_SIZE = 4, PICKED = STATUS_SIZE;

    // step: per-step rows; the row arrays start at 4 and take MAX_ROWS each; then per sequence slot a parameter block
    // SPLITS_NOW: attention splits of CHUNK slots this step's grids cover (enough for the longest live count)
    static final int N_ROWS = 0, LOGITS_MODE = 1, SPLITS_NOW = 2, TOKENS = 4;
    static final int LOGITS_NONE = 0, LOGITS_LAST = 1, LOGITS_ALL = 2;
    static final int SLOT_PARAMS = 6; // dmsOn, window, nvidia, forced, thresholdHi, thresholdLo
    static final int P_DMS = 0, P_WINDOW = 1, P_NVIDIA = 2, P_FORCED = 3, P_THR_HI = 4, P_THR_LO = 5;
    // stepF: per sequence slot: DMS scale and offset
    static final int F_SCALE = 0, F_OFFSET = 1, SLOT_FPARAMS = 2;

    static int seqOff(int maxRows) { return TOKENS + maxRows; }
    static int posOff(int maxRows) { return TOKENS + 2 * maxRows; }
    static int paramOff(int maxRows) { return TOKENS + 3 * maxRows; }
    static int stepSize(int maxRows, int maxSeqs) { return paramOff(maxRows) + maxSeqs * SLOT_PARAMS; }

    // KV element types on the device
    static final int KV_F32 = 0, KV_Q8 = 1, KV_FP8 = 2;

    // look-up table sections: f16 → float, bf16 → float, fp8 e4m3 → float (magnitude codes 0..127); the model's RoPE
    // inverse frequencies follow (LUT_ROPE + pair), so the fused RoPE/append kernel stays within 20 arguments
    static final int LUT_F16 = 0, LUT_BF16 = 65536, LUT_FP8 = 131072, LUT_SIZE = 131072 + 128, LUT_ROPE = LUT_SIZE;

    /** Largest work-group the kernels' local arrays are sized for, and slots per attention split. */
    static final int MAX_LOCAL = 256, CHUNK = 256;
}
