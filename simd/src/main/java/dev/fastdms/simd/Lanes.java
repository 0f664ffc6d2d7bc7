package dev.fastdms.simd;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector widths and horizontal sums for the kernels.
 *
 * <p>{@code reduceLanes(ADD)} on floats may add the lanes in any order, and it does: the JIT's intrinsic adds
 * pairwise while the interpreter's fallback adds left to right, so the same dot product gave different low bits
 * before and after warm-up (the same prompt, two passes, two perplexities; seen on an AVX-512 machine). {@link #sum}
 * and {@link #sum512} add in a fixed tree of lanewise adds and lane extracts, which round identically in both, so
 * results depend on the inputs only.
 */
public final class Lanes {
    /**
     * The widest float species the kernels use: 512 bits where the CPU has them (AVX-512: weight kernels that convert
     * int8 to float keep more loads in flight and read faster per thread), else 256 (under {@code -XX:UseAVX=2} too).
     */
    public static final VectorSpecies<Float> WIDE =
            FloatVector.SPECIES_PREFERRED.vectorBitSize() >= 512 ? FloatVector.SPECIES_512 : FloatVector.SPECIES_256;

    private static final VectorShuffle<Float> X4 = VectorShuffle.fromOp(FloatVector.SPECIES_256, i -> i ^ 4);
    private static final VectorShuffle<Float> X8 = VectorShuffle.fromOp(FloatVector.SPECIES_512, i -> i ^ 8);
    private static final VectorShuffle<Float> W4 = VectorShuffle.fromOp(FloatVector.SPECIES_512, i -> i ^ 4);

    private Lanes() {}

    // Small methods (under C2's 35-byte MaxInlineSize, so they are inlined even at call sites it deems cold; one per
    // width rather than a branch; few shuffles, which cost C2 many nodes: kernels with eight sums ran out of its
    // inlining node budget): a sum left out of line boxes the kernel's accumulator, and its FMAs then run in the
    // Vector API's slow Java path, allocating on every call (AccountingTest and a 40% slower decode caught this).

    /** Sum of the 8 lanes of a 256-bit vector as a fixed tree: ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)). */
    public static float sum(FloatVector v) {
        return low4(fold(v, X4));
    }

    /** (w0 + w2) + (w1 + w3), by lane extracts. */
    private static float low4(FloatVector w) {
        return (w.lane(0) + w.lane(2)) + (w.lane(1) + w.lane(3));
    }

    /** Sum of the 16 lanes of a 512-bit vector as a fixed tree: lane i is first added to lane i ^ 8, then i ^ 4, ... */
    public static float sum512(FloatVector v) {
        return low4(fold(fold(v, X8), W4));
    }

    private static FloatVector fold(FloatVector v, VectorShuffle<Float> s) { return v.add(v.rearrange(s)); }
}
