package dev.rlsr.engine.conformance;

import dev.rlsr.engine.conformance.DoubleOps.Ref;
import dev.rlsr.engine.optim.ParamLayout;
import dev.rlsr.engine.tensor.AdamWParams;
import dev.rlsr.engine.tensor.AttentionShape;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.GrpoSpec;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.kernels.DType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.TestInstance;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * One conformance suite for every {@link Backend}: each op against an independent double-precision reference
 * ({@link DoubleOps}) on seeded random inputs (never zeros) with odd sizes, GQA ratios 1-3, head dims 16-128, left
 * padding with a fully padded row, and KV-cache geometry. A subclass supplies the backend, the activation dtype
 * (F32, or BF16 for a device in bf16 mode) and the name shown in every test ("cpu-fp32", "cuda-bf16"); name the
 * class after the backend ({@code CpuConformanceTest}, {@code CudaBf16ConformanceTest}) so reports say where each
 * case ran.
 *
 * <p><b>Every tensor is a view.</b> Each input and output lives at element {@link #GUARD} of a larger buffer (the
 * 64-element alignment of {@link ParamLayout}, so vector loads stay aligned) whose guard regions are NaN (floats)
 * or {@link #INT_GUARD} (ints). Outputs are NaN-poisoned before the op, so an element the op does not write fails;
 * a guard that changes fails (a write outside the view); an input that changes fails (an op must not write its
 * inputs unless it says so); a read outside an input's view poisons the result with NaN.
 *
 * <p><b>bf16 mode.</b> Inputs in the activation dtype are rounded to bf16 <em>before</em> the reference is computed,
 * so the reference sees exactly what the device sees; outputs in the activation dtype are compared with the bf16
 * tolerance of {@link #tol}, F32 outputs (statistics, parameter gradients, optimizer state) with the fp32 one.
 * Saved inputs of a backward (attention's out and lse, RMSNorm's rstd, a log-prob's lse) come from the double
 * reference of the forward, rounded to their dtype, never from the backend under test.
 *
 * <p>Failure messages name the backend, op, case and seed, and list the first mismatches.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
public abstract class BackendConformance {

    /** Guard elements before and after every tensor of a case (ParamLayout's alignment). */
    static final int GUARD = ParamLayout.ALIGN;
    /** The value of I32 guard elements and of poisoned I32 outputs. */
    static final int INT_GUARD = -123_456_789;

    /** Unit roundoff of fp32: half an ulp of 1, the relative error of one correctly rounded operation. */
    static final double U_F32 = 0x1p-24;
    /** Unit roundoff of bf16 (8 significant bits): the relative error of one rounding of a result to bf16. */
    static final double U_BF16 = 0x1p-8;

    /**
     * The arithmetic of each op's output, which decides its tolerance in {@link #tol}. {@code mag} below is the
     * per-element magnitude of the terms that the reference returns (see {@link DoubleOps}).
     */
    public enum Arith {
        /** moves, casts to a wider type, gathers, embedding lookup: bit-exact */
        EXACT,
        /** one correctly rounded fp32 operation on exact inputs (add, scale) */
        ONE_ROUNDING,
        /** two products and a sum (RoPE): {@code |err| <= u|ref| + u*mag} in fp32 */
        ROTATION,
        /** cos/sin of an fp32 angle: a few ulps of 1 */
        ROPE_TABLE,
        /** fp32-accumulated sums of products (GEMMs, bias and embedding gradients, pooling) */
        SUM,
        /** a reduction through a square root (RMSNorm, LayerNorm, L2 norm, the global norm) */
        NORM,
        /** an elementwise exp/erf (SwiGLU, GELU) */
        ELEMENTWISE_FN,
        /** log-softmax over a row (cross entropy, log-prob gather) */
        SOFTMAX,
        /** attention forward: scores, softmax, P·V */
        ATTENTION,
        /** attention backward: P recomputed, dS = P (dP - D), then dQ/dK/dV products */
        ATTENTION_BACKWARD,
        /** GRPO loss and its statistics (fp32 exp of log-prob differences) */
        LOSS,
        /** the AdamW update */
        ADAMW
    }

    /**
     * A tolerance: {@code |got - ref| <= rel*|ref| + abs*mag}.
     *
     * @param rel relative part
     * @param abs multiple of the element's term magnitude
     */
    public record Tol(double rel, double abs) {}

    /**
     * The one tolerance table of the suite, per arithmetic class and output dtype.
     *
     * <p><b>F32 outputs</b> (the fp32 backends, and F32 outputs of every backend): exact where nothing is computed;
     * {@code u = 2^-24} per correctly rounded operation for add/scale/RoPE; {@code 1e-5*mag} for fp32-accumulated
     * sums, which bounds the rounding error of a sum of a few hundred terms in the blocked or tree orders CPU vector
     * lanes and GPU warps use (the worst case of a K-term sum in any order is {@code K*u*mag}, 1e-5 at K = 167) and
     * rejects TF32 products (2^-11); {@code 1e-5} relative where exp/log/sqrt and a reduction combine; {@code 1e-6}
     * for a single elementwise exp/erf and for AdamW.
     *
     * <p><b>BF16 outputs</b> (activations in bf16 mode): the inputs are exact bf16 values and every backend
     * accumulates in fp32, so the result is the fp32 one rounded once to bf16: the fp32 tolerance plus
     * {@code 2^-8} relative (bf16's 8-bit significand, round to nearest). Attention may additionally keep the
     * probabilities P in bf16 for the P·V product (flash attention feeds tensor cores in the input dtype):
     * {@code + 2^-8*mag} forward, and {@code + 2*2^-8*mag} backward, where both P and dS = P (dP - D) are rounded
     * before their products. A linear layer with a bias may round its output twice: cuBLASLt's bias epilogue with a
     * bf16 D can round {@code x W^T (+ residual)} to bf16 before the bias is added (seen on an H200, cuBLASLt 13.1,
     * with split-K algorithms and with a residual), so those cases add {@code 2^-8} of that intermediate
     * ({@link Ctx#checkBiasedBf16}).
     *
     * @param a   the arithmetic of the output
     * @param out the output's dtype
     * @return the tolerance
     */
    public static Tol tol(Arith a, DType out) {
        Tol f32 = switch (a) {
            case EXACT -> new Tol(0, 0);
            case ONE_ROUNDING -> new Tol(U_F32, 0);
            case ROTATION -> new Tol(U_F32, 2 * U_F32);
            case ROPE_TABLE -> new Tol(0, 4 * U_F32);
            case SUM -> new Tol(U_F32, 1e-5);
            case NORM, SOFTMAX, ATTENTION, ATTENTION_BACKWARD, LOSS -> new Tol(1e-5, 1e-5);
            case ELEMENTWISE_FN, ADAMW -> new Tol(1e-6, 1e-6);
        };
        if (out != DType.BF16 || a == Arith.EXACT) {
            return f32;
        }
        double intermediate = switch (a) {
            case ATTENTION -> U_BF16;
            case ATTENTION_BACKWARD -> 2 * U_BF16;
            default -> 0;
        };
        return new Tol(f32.rel() + U_BF16, f32.abs() + intermediate);
    }

    private final String name;
    private final DType act;
    private Backend be;

    /**
     * A suite for one backend in one activation dtype.
     *
     * @param name the backend as shown in test names ("cpu-fp32", "cuda-fp32", "cuda-bf16")
     * @param act  the activation dtype of the ops under test: F32 or BF16
     */
    protected BackendConformance(String name, DType act) {
        if (act != DType.F32 && act != DType.BF16) {
            throw new IllegalArgumentException("activation dtype must be F32 or BF16, got " + act);
        }
        this.name = name;
        this.act = act;
    }

    /**
     * Opens the backend under test, once per class. A device backend uses {@link TestBackends#device} so that it
     * skips without a device, or fails when the run requires one.
     *
     * @return the backend
     */
    protected abstract Backend openBackend();

    @BeforeAll
    final void open() {
        be = openBackend();
        assertTrue(be.computes(act), name + ": backend '" + be.name() + "' does not compute in " + act);
        System.out.println("conformance of backend '" + be.name() + "' as " + name + " (activations " + act + ")");
    }

    @AfterAll
    final void close() {
        if (be != null) {
            be.close();
        }
    }

    // ================================================================== harness

    /** One body of a case. */
    @FunctionalInterface
    interface Body {
        void run(Ctx c) throws Exception;
    }

    /** A named case of an op. */
    record Case(String name, Body body) {}

    static Case c(String name, Body body) {
        return new Case(name, body);
    }

    /** The dynamic tests of an op: one per case, each named "backend op: case". */
    private Stream<DynamicTest> op(String op, Case... cases) {
        return Arrays.stream(cases).map(k -> {
            long seed = 0x5eedL * 31 + (op + "/" + k.name()).hashCode();
            String label = name + " " + op + ": " + k.name();
            return DynamicTest.dynamicTest(label, () -> {
                try (Ctx ctx = new Ctx(label, seed)) {
                    k.body().run(ctx);
                }
            });
        });
    }

    /** A tensor of a case: its guarded parent buffer and, for inputs, the values it must keep. */
    private record Slot(Tensor parent, DType dtype, int n, float[] values, int[] ints, boolean keep) {}

    /**
     * The state of one case: the backend, the seed, the random source, and every tensor it created (views with
     * guards), which are checked and closed at the end.
     */
    final class Ctx implements AutoCloseable {
        final String where;
        final long seed;
        final SplittableRandom rng;
        final Backend be = BackendConformance.this.be;
        final DType act = BackendConformance.this.act;
        private final Map<Tensor, Slot> slots = new IdentityHashMap<>();
        private final List<Tensor> order = new ArrayList<>();

        Ctx(String where, long seed) {
            this.where = where;
            this.seed = seed;
            this.rng = new SplittableRandom(seed);
        }

        /** Gaussian values times scale, exactly representable in dtype (never zero). */
        float[] randn(DType dtype, int n, double scale) {
            float[] x = new float[n];
            for (int i = 0; i < n; i++) {
                float v;
                do {
                    v = (float) (rng.nextGaussian() * scale);
                } while (v == 0f);
                x[i] = v;
            }
            return dtype == DType.BF16 ? DoubleOps.bf16(x) : x;
        }

        /** Gaussian activations (rounded to bf16 in bf16 mode). */
        float[] act(int n, double scale) {
            return randn(act, n, scale);
        }

        /** values rounded to dtype (what a tensor of that dtype holds). */
        float[] as(DType dtype, double[] v) {
            float[] f = new float[v.length];
            for (int i = 0; i < v.length; i++) {
                f[i] = (float) v[i];
            }
            return dtype == DType.BF16 ? DoubleOps.bf16(f) : f;
        }

        private Tensor slot(DType dtype, float[] values, int[] ints, boolean keep, long... shape) {
            int n = Math.toIntExact(Tensor.count(shape));
            Tensor parent = be.alloc(dtype, GUARD + n + GUARD);
            if (dtype == DType.I32) {
                int[] all = new int[GUARD + n + GUARD];
                Arrays.fill(all, INT_GUARD);
                System.arraycopy(ints, 0, all, GUARD, n);
                be.upload(all, parent);
            } else {
                if (dtype == DType.BF16) {
                    for (int i = 0; i < n; i++) {
                        if (!Float.isNaN(values[i]) && DoubleOps.bf16(values[i]) != values[i]) {
                            throw new IllegalStateException(where + ": harness error, input value " + values[i]
                                    + " is not a bf16 value");
                        }
                    }
                }
                float[] all = new float[GUARD + n + GUARD];
                Arrays.fill(all, Float.NaN);
                System.arraycopy(values, 0, all, GUARD, n);
                be.upload(all, parent);
            }
            Tensor view = parent.view(GUARD, shape);
            slots.put(view, new Slot(parent, dtype, n, values == null ? null : values.clone(),
                    ints == null ? null : ints.clone(), keep));
            order.add(view);
            return view;
        }

        /** An input that the op must leave unchanged. */
        Tensor in(float[] values, DType dtype, long... shape) {
            return slot(dtype, values, null, true, shape);
        }

        /** An activation input. */
        Tensor in(float[] values, long... shape) {
            return in(values, act, shape);
        }

        /** An I32 input (ids, targets, positions, masks). */
        Tensor ints(int[] values, long... shape) {
            return slot(DType.I32, null, values, true, shape);
        }

        /** A tensor the op reads and writes (accumulated outputs, in-place ops). */
        Tensor inout(float[] values, DType dtype, long... shape) {
            return slot(dtype, values, null, false, shape);
        }

        /** An I32 tensor the op reads and writes. */
        Tensor intsInout(int[] values, long... shape) {
            return slot(DType.I32, null, values, false, shape);
        }

        /** An output poisoned with NaN (I32: {@link #INT_GUARD}). */
        Tensor out(DType dtype, long... shape) {
            int n = Math.toIntExact(Tensor.count(shape));
            if (dtype == DType.I32) {
                int[] poison = new int[n];
                Arrays.fill(poison, INT_GUARD);
                return slot(dtype, null, poison, false, shape);
            }
            float[] poison = new float[n];
            Arrays.fill(poison, Float.NaN);
            return slot(dtype, poison, null, false, shape);
        }

        private Slot slotOf(Tensor t) {
            Slot s = slots.get(t);
            if (s == null) {
                throw new IllegalStateException(where + ": harness error, tensor " + t + " was not made by the case");
            }
            return s;
        }

        /** The values of a floating tensor, after checking that nothing was written outside it. */
        float[] read(String what, Tensor t) {
            Slot s = slotOf(t);
            float[] all = be.download(s.parent());
            for (int i = 0; i < all.length; i++) {
                if ((i < GUARD || i >= GUARD + s.n()) && !Float.isNaN(all[i])) {
                    fail(where + " (seed " + seed + "): " + what + ": the op wrote " + all[i] + " outside the tensor, "
                            + (i < GUARD ? (GUARD - i) + " elements before it" : (i - GUARD - s.n() + 1)
                            + " elements after it"));
                }
            }
            return Arrays.copyOfRange(all, GUARD, GUARD + s.n());
        }

        /** The values of an I32 tensor, after checking that nothing was written outside it. */
        int[] readInts(String what, Tensor t) {
            Slot s = slotOf(t);
            int[] all = be.downloadInts(s.parent());
            for (int i = 0; i < all.length; i++) {
                if ((i < GUARD || i >= GUARD + s.n()) && all[i] != INT_GUARD) {
                    fail(where + " (seed " + seed + "): " + what + ": the op wrote " + all[i]
                            + " outside the tensor at guard element " + i);
                }
            }
            return Arrays.copyOfRange(all, GUARD, GUARD + s.n());
        }

        /** Compares an output with its reference under the tolerance of its arithmetic and dtype. */
        void check(String what, Tensor t, Ref ref, Arith arith) {
            compare(what + " " + t.dtype(), read(what, t), ref, tol(arith, t.dtype()), null);
        }

        /**
         * As {@link #check} with {@link Arith#SUM}, for the output of a linear layer with a bias: a BF16 output may
         * be rounded once more, at {@code ref - bias} (the product plus residual), before the bias is added.
         */
        void checkBiasedBf16(String what, Tensor t, Ref ref, float[] bias, int out) {
            double[] before = null;
            if (t.dtype() == DType.BF16) {
                before = new double[ref.v().length];
                for (int i = 0; i < before.length; i++) {
                    before[i] = ref.v()[i] - bias[i % out];
                }
            }
            compare(what + " " + t.dtype(), read(what, t), ref, tol(Arith.SUM, t.dtype()), before);
        }

        /** Bit-exact comparison (NaN matches any NaN). */
        void exact(String what, float[] got, float[] want) {
            double[] v = new double[want.length];
            for (int i = 0; i < v.length; i++) {
                v[i] = want[i];
            }
            compare(what, got, new Ref(v, new double[v.length]), tol(Arith.EXACT, DType.F32), null);
            for (int i = 0; i < got.length; i++) {
                if (!Float.isNaN(want[i]) && Float.floatToRawIntBits(got[i]) != Float.floatToRawIntBits(want[i])) {
                    fail(where + " (seed " + seed + "): " + what + ": element " + i + " is " + got[i]
                            + ", expected the bits of " + want[i]);
                }
            }
        }

        void exactInts(String what, int[] got, int[] want) {
            int bad = 0;
            StringBuilder first = new StringBuilder();
            for (int i = 0; i < want.length; i++) {
                if (got[i] != want[i] && bad++ < 8) {
                    first.append(String.format("%n    [%d] got %d, expected %d", i, got[i], want[i]));
                }
            }
            if (bad > 0) {
                fail(where + " (seed " + seed + "): " + what + ": " + bad + " of " + want.length
                        + " elements differ; first mismatches:" + first);
            }
        }

        /** {@code secondRounding}: where not null, each element may also carry 2^-8 of that value's magnitude. */
        void compare(String what, float[] got, Ref ref, Tol tol, double[] secondRounding) {
            if (got.length != ref.v().length) {
                fail(where + ": " + what + ": " + got.length + " elements, expected " + ref.v().length);
            }
            int bad = 0;
            double worst = 0;
            StringBuilder first = new StringBuilder();
            for (int i = 0; i < got.length; i++) {
                double e = ref.v()[i], g = got[i];
                double allowed = tol.rel() * Math.abs(e) + tol.abs() * ref.mag()[i]
                        + (secondRounding == null ? 0 : U_BF16 * Math.abs(secondRounding[i]));
                boolean ok;
                if (Double.isNaN(e)) {
                    ok = Double.isNaN(g);
                } else if (Double.isInfinite(e)) {
                    ok = g == e;
                } else {
                    ok = Math.abs(g - e) <= allowed;
                    if (ok && allowed > 0) {
                        worst = Math.max(worst, Math.abs(g - e) / allowed);
                    }
                }
                if (!ok && bad++ < 8) {
                    first.append(String.format("%n    [%d] got %.9g, reference %.9g, |diff| %.3g, allowed %.3g"
                            + " (mag %.3g)", i, g, e, Math.abs(g - e), allowed, ref.mag()[i]));
                }
            }
            if (bad > 0) {
                fail(String.format("%s (seed %d): %s: %d of %d elements outside |got-ref| <= %.3g*|ref| + %.3g*mag;"
                        + " first mismatches:%s", where, seed, what, bad, got.length, tol.rel(), tol.abs(), first));
            }
            System.out.printf("  %-78s %-22s max err/allowed %.3f%n", where, what, worst);
        }

        /** Checks that every input kept its values, then frees every buffer of the case. */
        @Override
        public void close() {
            String changed = null;
            try {
                for (Tensor t : order) {
                    Slot s = slots.get(t);
                    if (!s.keep() || t.isClosed()) {
                        continue;
                    }
                    if (s.dtype() == DType.I32) {
                        int[] now = Arrays.copyOfRange(be.downloadInts(s.parent()), GUARD, GUARD + s.n());
                        if (!Arrays.equals(now, s.ints()) && changed == null) {
                            changed = "input " + t + " was modified by the op";
                        }
                    } else {
                        float[] now = Arrays.copyOfRange(be.download(s.parent()), GUARD, GUARD + s.n());
                        for (int i = 0; i < now.length && changed == null; i++) {
                            if (Float.floatToIntBits(now[i]) != Float.floatToIntBits(s.values()[i])) {
                                changed = "input " + t + " was modified by the op at element " + i + ": "
                                        + s.values()[i] + " -> " + now[i];
                            }
                        }
                    }
                }
            } finally {
                for (Slot s : slots.values()) {
                    s.parent().close();
                }
            }
            if (changed != null) {
                fail(where + " (seed " + seed + "): " + changed);
            }
        }
    }

    private static int[] randomInts(SplittableRandom r, int n, int bound) {
        int[] x = new int[n];
        for (int i = 0; i < n; i++) {
            x[i] = r.nextInt(bound);
        }
        return x;
    }

    private static double[] toDouble(float[] x) {
        double[] d = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            d[i] = x[i];
        }
        return d;
    }

    private static Ref exactRef(float[] x) {
        return new Ref(toDouble(x), new double[x.length]);
    }

    // ================================================================== memory

    @TestFactory
    Stream<DynamicTest> uploadDownload() {
        return op("upload/download",
                c("F32 (7,33) with signed zero, infinities, NaN and extremes", x -> {
                    float[] d = x.randn(DType.F32, 7 * 33, 3);
                    float[] special = {-0f, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN,
                            Float.MAX_VALUE, -Float.MIN_NORMAL, 1e-30f};
                    System.arraycopy(special, 0, d, 11, special.length);
                    Tensor t = x.out(DType.F32, 7, 33);
                    x.be.upload(d, t);
                    x.exact("view", x.read("view", t), d);
                    try (Tensor owner = x.be.upload(d, DType.F32, 7, 33)) {
                        x.exact("new tensor", x.be.download(owner), d);
                    }
                }),
                c("BF16 (5,37): round to nearest even, ties, NaN, infinities, overflow", x -> {
                    float[] d = x.randn(DType.F32, 5 * 37, 3);
                    float[] special = {1f + 0x1p-8f, 1f + 3 * 0x1p-8f, -(1f + 0x1p-8f), 1f + 0x1p-8f + 0x1p-20f,
                            -0f, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN, Float.MAX_VALUE,
                            0x1.fep127f, 3e-39f};
                    System.arraycopy(special, 0, d, 3, special.length);
                    float[] want = DoubleOps.bf16(d);
                    Tensor t = x.out(DType.BF16, 5, 37);
                    x.be.upload(d, t);
                    x.exact("view", x.read("view", t), want);
                    try (Tensor owner = x.be.upload(d, DType.BF16, 5, 37)) {
                        x.exact("new tensor", x.be.download(owner), want);
                    }
                }),
                c("I32 (3,41) with extremes", x -> {
                    int[] d = randomInts(x.rng, 3 * 41, 1_000_000);
                    d[0] = Integer.MIN_VALUE;
                    d[1] = Integer.MAX_VALUE;
                    d[2] = -1;
                    Tensor t = x.out(DType.I32, 3, 41);
                    x.be.upload(d, t);
                    x.exactInts("view", x.readInts("view", t), d);
                    try (Tensor owner = x.be.upload(d, 3, 41)) {
                        x.exactInts("new tensor", x.be.downloadInts(owner), d);
                    }
                }),
                c("zeros of F32, BF16, I32", x -> {
                    for (DType dt : new DType[]{DType.F32, DType.BF16, DType.I32}) {
                        try (Tensor z = x.be.zeros(dt, 3, 67)) {
                            if (dt == DType.I32) {
                                x.exactInts("zeros " + dt, x.be.downloadInts(z), new int[3 * 67]);
                            } else {
                                x.exact("zeros " + dt, x.be.download(z), new float[3 * 67]);
                            }
                        }
                    }
                }));
    }

    private static final ValueLayout.OfFloat LE_F32 =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort LE_16 =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @TestFactory
    Stream<DynamicTest> uploadRaw() {
        List<Case> cases = new ArrayList<>();
        for (DType src : new DType[]{DType.F32, DType.BF16, DType.F16}) {
            for (DType dst : new DType[]{DType.F32, DType.BF16}) {
                cases.add(c(src + " bytes into " + dst + " at offset 70 of 301", x -> {
                    int count = 157, total = 301, offset = 70;
                    float[] values = new float[count];
                    try (Arena arena = Arena.ofConfined()) {
                        MemorySegment seg = arena.allocate((long) count * src.bytes() + 3);
                        for (int i = 0; i < count; i++) {
                            switch (src) {
                                case F32 -> {
                                    float v = (float) (x.rng.nextGaussian() * 3);
                                    seg.setAtIndex(LE_F32, i, v);
                                    values[i] = v;
                                }
                                case BF16 -> {
                                    short bits = (short) (x.rng.nextInt(0x7f00) | (x.rng.nextBoolean() ? 0x8000 : 0));
                                    seg.setAtIndex(LE_16, i, bits);
                                    values[i] = Float.intBitsToFloat((bits & 0xffff) << 16);
                                }
                                default -> {
                                    // every finite half: subnormals, normals, both signs (exponent field < 31)
                                    short bits = (short) (x.rng.nextInt(0x7c00) | (x.rng.nextBoolean() ? 0x8000 : 0));
                                    seg.setAtIndex(LE_16, i, bits);
                                    values[i] = DoubleOps.f16(bits);
                                }
                            }
                        }
                        float[] before = x.randn(dst, total, 1);
                        Tensor t = x.inout(before, dst, total);
                        x.be.uploadRaw(seg, src, count, t, offset);
                        float[] want = before.clone();
                        for (int i = 0; i < count; i++) {
                            want[offset + i] = dst == DType.BF16 ? DoubleOps.bf16(values[i]) : values[i];
                        }
                        x.exact("destination", x.read("destination", t), want);
                    }
                }));
            }
        }
        return op("uploadRaw", cases.toArray(Case[]::new));
    }

    @TestFactory
    Stream<DynamicTest> copy() {
        return op("copy",
                c("F32 -> F32 (7,33)", x -> copyCase(x, DType.F32, DType.F32)),
                c("BF16 -> BF16 (7,33)", x -> copyCase(x, DType.BF16, DType.BF16)),
                c("F32 -> BF16 (7,33), rounding to nearest even", x -> copyCase(x, DType.F32, DType.BF16)),
                c("BF16 -> F32 (7,33), exact widening", x -> copyCase(x, DType.BF16, DType.F32)),
                c("I32 -> I32 (7,33)", x -> {
                    int[] d = randomInts(x.rng, 7 * 33, 1 << 30);
                    Tensor s = x.ints(d, 7, 33), t = x.out(DType.I32, 231);
                    x.be.copy(s, t);
                    x.exactInts("dst", x.readInts("dst", t), d);
                }));
    }

    private static void copyCase(Ctx x, DType from, DType to) {
        float[] d = x.randn(from, 7 * 33, 3);
        if (from == DType.F32) {
            d[5] = 1f + 0x1p-8f; // a tie between two bf16 values: even wins
            d[6] = 1f + 3 * 0x1p-8f;
        }
        Tensor s = x.in(d, from, 7, 33), t = x.out(to, 7 * 33);
        x.be.copy(s, t);
        x.exact("dst", x.read("dst", t), to == DType.BF16 ? DoubleOps.bf16(d) : d);
    }

    @TestFactory
    Stream<DynamicTest> fill() {
        return op("fill",
                c("F32 view with 0.37", x -> {
                    Tensor t = x.out(DType.F32, 5, 29);
                    x.be.fill(t, 0.37f);
                    float[] want = new float[5 * 29];
                    Arrays.fill(want, 0.37f);
                    x.exact("t", x.read("t", t), want);
                }),
                c("BF16 view with 0.37 (rounded to bf16)", x -> {
                    Tensor t = x.out(DType.BF16, 5, 29);
                    x.be.fill(t, 0.37f);
                    float[] want = new float[5 * 29];
                    Arrays.fill(want, DoubleOps.bf16(0.37f));
                    x.exact("t", x.read("t", t), want);
                }),
                c("I32 view with 7 and -3", x -> {
                    for (int v : new int[]{7, -3}) {
                        Tensor t = x.out(DType.I32, 131);
                        x.be.fill(t, v);
                        int[] want = new int[131];
                        Arrays.fill(want, v);
                        x.exactInts("t", x.readInts("t", t), want);
                    }
                }));
    }

    @TestFactory
    Stream<DynamicTest> copyRows() {
        List<Case> cases = new ArrayList<>();
        for (DType dt : new DType[]{DType.F32, DType.BF16, DType.I32}) {
            cases.add(c(dt + " batch 2, 3 rows of 37, from row 1 of 5 into row 4 of 9 (KV-cache append)",
                    x -> copyRowsCase(x, dt, 2, 3, 37, 5, 1, 9, 4)));
            cases.add(c(dt + " batch 3, 1 row of 1, from row 0 of 1 into row 6 of 7 (mask append)",
                    x -> copyRowsCase(x, dt, 3, 1, 1, 1, 0, 7, 6)));
        }
        return op("copyRows", cases.toArray(Case[]::new));
    }

    private static void copyRowsCase(Ctx x, DType dt, int batch, int rows, int width, int srcStride, int srcRow0,
                                     int dstStride, int dstRow0) {
        int sn = batch * srcStride * width, dn = batch * dstStride * width;
        boolean ints = dt == DType.I32;
        float[] src = ints ? null : x.randn(dt, sn, 1), dst = ints ? null : x.randn(dt, dn, 1);
        int[] isrc = ints ? randomInts(x.rng, sn, 1000) : null, idst = ints ? randomInts(x.rng, dn, 1000) : null;
        Tensor s = ints ? x.ints(isrc, sn) : x.in(src, dt, sn);
        Tensor d = ints ? x.intsInout(idst, dn) : x.inout(dst, dt, dn);
        x.be.copyRows(s, srcStride, srcRow0, d, dstStride, dstRow0, batch, rows, width);
        for (int b = 0; b < batch; b++) {
            for (int r = 0; r < rows; r++) {
                int so = (b * srcStride + srcRow0 + r) * width, dof = (b * dstStride + dstRow0 + r) * width;
                if (ints) {
                    System.arraycopy(isrc, so, idst, dof, width);
                } else {
                    System.arraycopy(src, so, dst, dof, width);
                }
            }
        }
        if (ints) {
            x.exactInts("dst", x.readInts("dst", d), idst);
        } else {
            x.exact("dst", x.read("dst", d), dst);
        }
    }

    @TestFactory
    Stream<DynamicTest> gatherRows() {
        return op("gatherRows",
                c("(11,37) act rows [3,0,10,3,7,10]", x -> {
                    float[] src = x.act(11 * 37, 1);
                    int[] rows = {3, 0, 10, 3, 7, 10};
                    Tensor s = x.in(src, 11, 37), r = x.ints(rows, 6), d = x.out(x.act, 6, 37);
                    x.be.gatherRows(s, r, d);
                    float[] want = new float[6 * 37];
                    for (int i = 0; i < rows.length; i++) {
                        System.arraycopy(src, rows[i] * 37, want, i * 37, 37);
                    }
                    x.exact("dst", x.read("dst", d), want);
                }));
    }

    // ================================================================== elementwise and reductions

    @TestFactory
    Stream<DynamicTest> add() {
        int n = 1031;
        return op("add",
                c("(1031) into a new tensor", x -> {
                    float[] a = x.act(n, 1), b = x.act(n, 1);
                    Tensor ta = x.in(a, n), tb = x.in(b, n), out = x.out(x.act, n);
                    x.be.add(ta, tb, out);
                    x.check("out", out, DoubleOps.add(a, b), Arith.ONE_ROUNDING);
                }),
                c("(1031) out == a", x -> {
                    float[] a = x.act(n, 1), b = x.act(n, 1);
                    Tensor ta = x.inout(a, x.act, n), tb = x.in(b, n);
                    x.be.add(ta, tb, ta);
                    x.check("a", ta, DoubleOps.add(a, b), Arith.ONE_ROUNDING);
                }),
                c("(1031) out == b", x -> {
                    float[] a = x.act(n, 1), b = x.act(n, 1);
                    Tensor ta = x.in(a, n), tb = x.inout(b, x.act, n);
                    x.be.add(ta, tb, tb);
                    x.check("b", tb, DoubleOps.add(a, b), Arith.ONE_ROUNDING);
                }));
    }

    @TestFactory
    Stream<DynamicTest> scale() {
        List<Case> cases = new ArrayList<>();
        cases.add(c("F32 (1031) by -0.37", x -> scaleCase(x, DType.F32)));
        if (act != DType.F32) {
            cases.add(c(act + " (1031) by -0.37", x -> scaleCase(x, act)));
        }
        return op("scale", cases.toArray(Case[]::new));
    }

    private static void scaleCase(Ctx x, DType dt) {
        float[] a = x.randn(dt, 1031, 2);
        Tensor t = x.inout(a, dt, 1031);
        x.be.scale(t, -0.37f);
        x.check("t", t, DoubleOps.scale(a, -0.37f), Arith.ONE_ROUNDING);
    }

    @TestFactory
    Stream<DynamicTest> clipScale() {
        int n = 12_347;
        List<Case> cases = new ArrayList<>();
        for (double factor : new double[]{0.5, 2, 0, -1}) {
            cases.add(c("(" + n + ") maxNorm = " + (factor > 0 ? factor + " x norm" : String.valueOf(factor)), x -> {
                float[] g = x.randn(DType.F32, n, 0.01);
                double norm = Math.sqrt(DoubleOps.clipScale(g, 0)[0].v()[0]);
                float maxNorm = factor > 0 ? (float) (factor * norm) : (float) factor;
                Tensor tg = x.in(g, DType.F32, n), tn = x.out(DType.F32, 1), ts = x.out(DType.F32, 1);
                x.be.clipScale(tg, maxNorm, tn, ts);
                Ref[] r = DoubleOps.clipScale(g, maxNorm);
                x.check("sumSq", tn, r[0], Arith.NORM);
                x.check("scale", ts, r[1], Arith.NORM);
            }));
        }
        return op("clipScale", cases.toArray(Case[]::new));
    }

    @TestFactory
    Stream<DynamicTest> argmaxRows() {
        return op("argmaxRows",
                c("(9,1001) with ties, NaNs, a constant row and a last-column maximum", x -> {
                    int rows = 9, w = 1001;
                    float[] d = x.act(rows * w, 1);
                    d[w + 5] = 9f;
                    d[w + 900] = 9f; // tie: the first index wins
                    d[2 * w + 300] = Float.NaN;
                    d[2 * w + 17] = Float.NaN; // NaN wins, the first one
                    Arrays.fill(d, 3 * w, 4 * w, 0.5f); // constant: index 0
                    d[5 * w - 1] = 11f; // last column
                    d[6 * w + 3] = Float.POSITIVE_INFINITY;
                    Tensor t = x.in(d, rows, w), out = x.out(DType.I32, rows);
                    x.be.argmaxRows(t, out);
                    x.exactInts("argmax", x.readInts("argmax", out), DoubleOps.argmax(d, rows, w));
                }));
    }

    // ================================================================== linear layers

    @TestFactory
    Stream<DynamicTest> linear() {
        return op("linear",
                c("N=1 in=64 out=5, no bias", x -> linearCase(x, 1, 64, 5, false, 0)),
                c("N=7 in=33 out=17, bias", x -> linearCase(x, 7, 33, 17, true, 0)),
                c("N=13 in=48 out=40, bias, residual != y", x -> linearCase(x, 13, 48, 40, true, 1)),
                c("N=17 in=37 out=130, residual == y", x -> linearCase(x, 17, 37, 130, false, 2)),
                c("N=130 in=160 out=3, bias, residual == y", x -> linearCase(x, 130, 160, 3, true, 2)));
    }

    /** residual: 0 none, 1 a separate tensor, 2 y itself. */
    private static void linearCase(Ctx x, int n, int in, int out, boolean bias, int residual) {
        float[] xs = x.act(n * in, 1), w = x.act(out * in, 0.2), b = bias ? x.act(out, 1) : null;
        float[] r = residual > 0 ? x.act(n * out, 1) : null;
        Tensor tx = x.in(xs, n, in), tw = x.in(w, out, in), tb = bias ? x.in(b, out) : null;
        Tensor y = residual == 2 ? x.inout(r, x.act, n, out) : x.out(x.act, n, out);
        Tensor tr = residual == 1 ? x.in(r, n, out) : residual == 2 ? y : null;
        x.be.linear(tx, tw, tb, tr, y);
        if (bias) {
            x.checkBiasedBf16("y", y, DoubleOps.linear(xs, w, b, r, n, in, out), b, out);
        } else {
            x.check("y", y, DoubleOps.linear(xs, w, b, r, n, in, out), Arith.SUM);
        }
    }

    @TestFactory
    Stream<DynamicTest> linearBackwardInput() {
        return op("linearBackwardInput",
                c("N=7 in=33 out=17, overwrite", x -> lbiCase(x, 7, 33, 17, false)),
                c("N=13 in=48 out=40, accumulate", x -> lbiCase(x, 13, 48, 40, true)),
                c("N=130 in=37 out=160, accumulate", x -> lbiCase(x, 130, 37, 160, true)));
    }

    private static void lbiCase(Ctx x, int n, int in, int out, boolean acc) {
        float[] dy = x.act(n * out, 1), w = x.act(out * in, 0.2), dx0 = acc ? x.act(n * in, 1) : null;
        Tensor tdy = x.in(dy, n, out), tw = x.in(w, out, in);
        Tensor dx = acc ? x.inout(dx0, x.act, n, in) : x.out(x.act, n, in);
        x.be.linearBackwardInput(tdy, tw, dx, acc);
        x.check("dx", dx, DoubleOps.linearBackwardInput(dy, w, dx0, n, in, out), Arith.SUM);
    }

    @TestFactory
    Stream<DynamicTest> linearBackwardWeight() {
        return op("linearBackwardWeight",
                c("N=7 in=33 out=17, no bias, accumulating", x -> lbwCase(x, 7, 33, 17, false)),
                c("N=130 in=48 out=40, bias, accumulating", x -> lbwCase(x, 130, 48, 40, true)),
                c("N=1 in=64 out=5, bias, accumulating", x -> lbwCase(x, 1, 64, 5, true)));
    }

    private static void lbwCase(Ctx x, int n, int in, int out, boolean bias) {
        float[] dy = x.act(n * out, 1), xs = x.act(n * in, 1);
        float[] dw0 = x.randn(DType.F32, out * in, 1), db0 = bias ? x.randn(DType.F32, out, 1) : null;
        Tensor tdy = x.in(dy, n, out), tx = x.in(xs, n, in);
        Tensor dw = x.inout(dw0, DType.F32, out, in), db = bias ? x.inout(db0, DType.F32, out) : null;
        x.be.linearBackwardWeight(tdy, tx, dw, db);
        x.check("dW", dw, DoubleOps.linearBackwardWeight(dy, xs, dw0, n, in, out), Arith.SUM);
        if (bias) {
            x.check("dBias", db, DoubleOps.columnSums(dy, db0, n, out), Arith.SUM);
        }
    }

    // ================================================================== embedding

    @TestFactory
    Stream<DynamicTest> embedding() {
        return op("embedding",
                c("V=97 C=37, 23 ids with repeats", x -> {
                    int v = 97, cc = 37;
                    int[] ids = randomInts(x.rng, 23, v);
                    ids[4] = ids[9] = ids[20] = 5;
                    ids[0] = 0;
                    ids[22] = v - 1;
                    float[] table = x.act(v * cc, 1);
                    Tensor ti = x.ints(ids, 23), tt = x.in(table, v, cc), out = x.out(x.act, 23, cc);
                    x.be.embedding(ti, tt, out);
                    float[] want = new float[23 * cc];
                    for (int i = 0; i < ids.length; i++) {
                        System.arraycopy(table, ids[i] * cc, want, i * cc, cc);
                    }
                    x.exact("out", x.read("out", out), want);
                }));
    }

    @TestFactory
    Stream<DynamicTest> embeddingBackward() {
        return op("embeddingBackward",
                c("V=97 C=37, 41 ids, id 5 nine times, accumulating", x -> {
                    int v = 97, cc = 37, n = 41;
                    int[] ids = randomInts(x.rng, n, v);
                    for (int i = 0; i < n; i += 5) {
                        ids[i] = 5;
                    }
                    float[] dOut = x.act(n * cc, 1), dt0 = x.randn(DType.F32, v * cc, 1);
                    Tensor ti = x.ints(ids, n), tg = x.in(dOut, n, cc), dt = x.inout(dt0, DType.F32, v, cc);
                    x.be.embeddingBackward(ti, tg, dt);
                    x.check("dTable", dt, DoubleOps.embeddingBackward(ids, dOut, dt0, cc), Arith.SUM);
                }));
    }

    // ================================================================== RMSNorm

    private static final int[][] NORM_SHAPES = {{13, 64}, {17 * 6, 48}, {3, 128}, {130, 16}};
    private static final String[] NORM_NAMES = {"13 rows of 64", "per-head: 17 tokens x 6 heads of 48",
            "3 rows of 128", "130 rows of 16"};

    @TestFactory
    Stream<DynamicTest> rmsNorm() {
        List<Case> cases = new ArrayList<>();
        for (int k = 0; k < NORM_SHAPES.length; k++) {
            int rows = NORM_SHAPES[k][0], d = NORM_SHAPES[k][1];
            float eps = k % 2 == 0 ? 1e-6f : 1e-5f;
            cases.add(c(NORM_NAMES[k] + ", eps " + eps, x -> {
                float[] xs = x.act(rows * d, 2), w = x.act(d, 1);
                Tensor tx = x.in(xs, rows, d), tw = x.in(w, d);
                Tensor out = x.out(x.act, rows, d), rstd = x.out(DType.F32, rows);
                x.be.rmsNorm(tx, tw, eps, out, rstd);
                Ref[] r = DoubleOps.rmsNorm(xs, w, eps, rows, d);
                x.check("out", out, r[0], Arith.NORM);
                x.check("rstd", rstd, r[1], Arith.NORM);
            }));
        }
        return op("rmsNorm", cases.toArray(Case[]::new));
    }

    @TestFactory
    Stream<DynamicTest> rmsNormBackward() {
        List<Case> cases = new ArrayList<>();
        String[] modes = {"dx overwritten", "accumulateDx", "dx == dOut"};
        for (int k = 0; k < NORM_SHAPES.length; k++) {
            int rows = NORM_SHAPES[k][0], d = NORM_SHAPES[k][1];
            for (int mode = 0; mode < 3; mode++) {
                if (k >= 2 && mode != k - 2 + 1) {
                    continue; // every mode on the first two shapes, one mode each on the others
                }
                int md = mode;
                cases.add(c(NORM_NAMES[k] + ", " + modes[mode], x -> {
                    float[] xs = x.act(rows * d, 2), w = x.act(d, 1), g = x.act(rows * d, 1);
                    float[] rstd = x.as(DType.F32, DoubleOps.rmsNorm(xs, w, 1e-6, rows, d)[1].v());
                    float[] dw0 = x.randn(DType.F32, d, 1), dx0 = md == 1 ? x.act(rows * d, 1) : null;
                    Tensor tx = x.in(xs, rows, d), tw = x.in(w, d), tr = x.in(rstd, DType.F32, rows);
                    Tensor dw = x.inout(dw0, DType.F32, d);
                    Tensor tg = md == 2 ? x.inout(g, x.act, rows, d) : x.in(g, rows, d);
                    Tensor dx = md == 2 ? tg : md == 1 ? x.inout(dx0, x.act, rows, d) : x.out(x.act, rows, d);
                    x.be.rmsNormBackward(tg, tx, tw, tr, dx, dw, md == 1);
                    Ref[] r = DoubleOps.rmsNormBackward(g, xs, w, rstd, dx0, dw0, rows, d);
                    x.check("dx", dx, r[0], Arith.NORM);
                    x.check("dw", dw, r[1], Arith.NORM);
                }));
            }
        }
        return op("rmsNormBackward", cases.toArray(Case[]::new));
    }

    // ================================================================== RoPE

    private static float[] invFreq(int d, double theta) {
        float[] f = new float[d / 2];
        for (int i = 0; i < f.length; i++) {
            f[i] = (float) (1.0 / Math.pow(theta, 2.0 * i / d));
        }
        return f;
    }

    /** Positions 0..n-1 shuffled with large ones (long contexts) and left-padding clamps (repeated 0). */
    private static int[] positions(SplittableRandom r, int n) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) {
            p[i] = switch (i % 3) {
                case 0 -> i;
                case 1 -> r.nextInt(40_000);
                default -> 0;
            };
        }
        return p;
    }

    @TestFactory
    Stream<DynamicTest> ropeTable() {
        List<Case> cases = new ArrayList<>();
        for (int d : new int[]{16, 48, 64, 128}) {
            cases.add(c("37 positions up to 40000, head dim " + d, x -> {
                int[] pos = positions(x.rng, 37);
                float[] inv = invFreq(d, d == 128 ? 1_000_000 : 10_000);
                Tensor tp = x.ints(pos, 37), ti = x.in(inv, DType.F32, d / 2), table = x.out(DType.F32, 37, d);
                x.be.ropeTable(tp, ti, table);
                x.check("table", table, DoubleOps.ropeTable(pos, inv), Arith.ROPE_TABLE);
            }));
        }
        return op("ropeTable", cases.toArray(Case[]::new));
    }

    @TestFactory
    Stream<DynamicTest> rope() {
        List<Case> cases = new ArrayList<>();
        int[][] shapes = {{17, 1, 16}, {17, 6, 48}, {5, 2, 64}, {3, 3, 128}};
        for (int[] sh : shapes) {
            for (boolean inverse : new boolean[]{false, true}) {
                int n = sh[0], heads = sh[1], d = sh[2];
                cases.add(c("N=" + n + " heads=" + heads + " D=" + d + (inverse ? ", inverse" : ""), x -> {
                    int[] pos = positions(x.rng, n);
                    float[] table = x.as(DType.F32, DoubleOps.ropeTable(pos, invFreq(d, 10_000)).v());
                    float[] xs = x.act(n * heads * d, 1);
                    Tensor tt = x.in(table, DType.F32, n, d), tx = x.inout(xs, x.act, n, heads * d);
                    x.be.rope(tx, tt, heads, inverse);
                    x.check("x", tx, DoubleOps.rope(xs, table, n, heads, d, inverse), Arith.ROTATION);
                }));
            }
        }
        return op("rope", cases.toArray(Case[]::new));
    }

    // ================================================================== attention

    /**
     * An attention geometry with a key mask: {@code pads[b]} leading padding keys of row b (>= kLen: the row is
     * fully padded), null for no mask. Keys past kLen get mask 1 and NaN keys/values, so they must not be read.
     */
    record Attn(String name, int batch, int qLen, int kLen, int kStride, int qOffset, int heads, int kvHeads,
                int headDim, int[] pads) {
        AttentionShape shape() {
            return new AttentionShape(batch, qLen, kLen, kStride, qOffset, heads, kvHeads, headDim,
                    (float) (1.0 / Math.sqrt(headDim)));
        }

        int[] mask() {
            if (pads == null) {
                return null;
            }
            int[] m = new int[batch * kStride];
            for (int b = 0; b < batch; b++) {
                for (int j = 0; j < kStride; j++) {
                    m[b * kStride + j] = j >= pads[b] || j >= kLen ? 1 : 0;
                }
            }
            return m;
        }
    }

    private static Attn self(String name, int b, int t, int h, int kh, int d, int[] pads) {
        return new Attn(name, b, t, t, t, 0, h, kh, d, pads);
    }

    private static final Attn[] ATTENTION = {
            self("B=2 T=17 H=2/2 D=16, no mask", 2, 17, 2, 2, 16, null),
            self("B=2 T=17 H=4/2 D=64, left padding, row 1 fully padded", 2, 17, 4, 2, 64, new int[]{5, 17}),
            self("B=1 T=130 H=6/2 D=48, left padding", 1, 130, 6, 2, 48, new int[]{9}),
            self("B=2 T=1 H=3/1 D=128, no mask", 2, 1, 3, 1, 128, null),
            self("B=3 T=33 H=3/3 D=128, left padding", 3, 33, 3, 3, 128, new int[]{0, 4, 31}),
            new Attn("KV cache: B=2 qLen=3 qOffset=5 kLen=8 kStride=12 H=4/2 D=64, left padding", 2, 3, 8, 12, 5, 4, 2,
                    64, new int[]{0, 3}),
            new Attn("KV decode: B=2 qLen=1 qOffset=9 kLen=10 kStride=16 H=6/2 D=128, left padding", 2, 1, 10, 16, 9,
                    6, 2, 128, new int[]{2, 0}),
    };

    /** q (B,Tq,H*D), k and v (B,kStride,KH*D) with NaN rows at and past kLen. */
    private static float[][] qkv(Ctx x, Attn a) {
        int kw = a.kvHeads() * a.headDim();
        float[] q = x.act(a.batch() * a.qLen() * a.heads() * a.headDim(), 1);
        float[] k = x.act(a.batch() * a.kStride() * kw, 1), v = x.act(a.batch() * a.kStride() * kw, 1);
        for (int b = 0; b < a.batch(); b++) {
            for (int j = a.kLen(); j < a.kStride(); j++) {
                Arrays.fill(k, (b * a.kStride() + j) * kw, (b * a.kStride() + j + 1) * kw, Float.NaN);
                Arrays.fill(v, (b * a.kStride() + j) * kw, (b * a.kStride() + j + 1) * kw, Float.NaN);
            }
        }
        return new float[][]{q, k, v};
    }

    @TestFactory
    Stream<DynamicTest> attention() {
        return op("attention", Arrays.stream(ATTENTION).map(a -> c(a.name(), x -> {
            AttentionShape s = a.shape();
            float[][] qkv = qkv(x, a);
            int[] mask = a.mask();
            int qw = a.heads() * a.headDim(), kw = a.kvHeads() * a.headDim();
            Tensor q = x.in(qkv[0], a.batch(), a.qLen(), qw), k = x.in(qkv[1], a.batch(), a.kStride(), kw);
            Tensor v = x.in(qkv[2], a.batch(), a.kStride(), kw);
            Tensor m = mask == null ? null : x.ints(mask, a.batch(), a.kStride());
            Tensor out = x.out(x.act, a.batch(), a.qLen(), qw), lse = x.out(DType.F32, a.batch(), a.heads(), a.qLen());
            x.be.attention(q, k, v, out, lse, s, m);
            Ref[] r = DoubleOps.attention(qkv[0], qkv[1], qkv[2], mask, s, true);
            x.check("out", out, r[0], Arith.ATTENTION);
            x.check("lse", lse, r[1], Arith.ATTENTION);
        })).toArray(Case[]::new));
    }

    @TestFactory
    Stream<DynamicTest> attentionBackward() {
        return op("attentionBackward", Arrays.stream(ATTENTION).map(a -> c(a.name(), x -> {
            AttentionShape s = a.shape();
            float[][] qkv = qkv(x, a);
            int[] mask = a.mask();
            int qw = a.heads() * a.headDim(), kw = a.kvHeads() * a.headDim();
            Ref[] f = DoubleOps.attention(qkv[0], qkv[1], qkv[2], mask, s, true);
            float[] o = x.as(x.act, f[0].v()), l = x.as(DType.F32, f[1].v()), dOut = x.act(o.length, 1);
            Tensor q = x.in(qkv[0], a.batch(), a.qLen(), qw), k = x.in(qkv[1], a.batch(), a.kStride(), kw);
            Tensor v = x.in(qkv[2], a.batch(), a.kStride(), kw);
            Tensor m = mask == null ? null : x.ints(mask, a.batch(), a.kStride());
            Tensor to = x.in(o, a.batch(), a.qLen(), qw), tl = x.in(l, DType.F32, a.batch(), a.heads(), a.qLen());
            Tensor tg = x.in(dOut, a.batch(), a.qLen(), qw);
            Tensor dq = x.out(x.act, a.batch(), a.qLen(), qw), dk = x.out(x.act, a.batch(), a.kStride(), kw);
            Tensor dv = x.out(x.act, a.batch(), a.kStride(), kw);
            x.be.attentionBackward(q, k, v, to, tl, tg, dq, dk, dv, s, m);
            Ref[] g = DoubleOps.attentionBackward(qkv[0], qkv[1], qkv[2], o, l, dOut, mask, s);
            x.check("dq", dq, g[0], Arith.ATTENTION_BACKWARD);
            x.check("dk", dk, g[1], Arith.ATTENTION_BACKWARD);
            x.check("dv", dv, g[2], Arith.ATTENTION_BACKWARD);
        })).toArray(Case[]::new));
    }

    // ================================================================== MLP

    @TestFactory
    Stream<DynamicTest> swiglu() {
        return op("swiglu",
                c("(7,45)", x -> swigluCase(x, 7 * 45)),
                c("(130,37)", x -> swigluCase(x, 130 * 37)));
    }

    private static void swigluCase(Ctx x, int n) {
        float[] g = x.act(n, 2), u = x.act(n, 1);
        Tensor tg = x.in(g, n), tu = x.in(u, n), h = x.out(x.act, n);
        x.be.swiglu(tg, tu, h);
        x.check("h", h, DoubleOps.swiglu(g, u), Arith.ELEMENTWISE_FN);
    }

    @TestFactory
    Stream<DynamicTest> swigluBackward() {
        return op("swigluBackward",
                c("(7,45)", x -> swigluBackwardCase(x, 7 * 45)),
                c("(130,37)", x -> swigluBackwardCase(x, 130 * 37)));
    }

    private static void swigluBackwardCase(Ctx x, int n) {
        float[] g = x.act(n, 2), u = x.act(n, 1), dh = x.act(n, 1);
        Tensor tg = x.in(g, n), tu = x.in(u, n), th = x.in(dh, n), dg = x.out(x.act, n), du = x.out(x.act, n);
        x.be.swigluBackward(tg, tu, th, dg, du);
        Ref[] r = DoubleOps.swigluBackward(g, u, dh);
        x.check("dg", dg, r[0], Arith.ELEMENTWISE_FN);
        x.check("du", du, r[1], Arith.ELEMENTWISE_FN);
    }

    // ================================================================== losses

    /** Targets in [0, v) with the given rows ignored (alternately -100 and -1). */
    private static int[] targets(SplittableRandom r, int n, int v, int... ignored) {
        int[] t = randomInts(r, n, v);
        t[0] = v - 1;
        for (int k = 0; k < ignored.length; k++) {
            t[ignored[k]] = k % 2 == 0 ? -100 : -1;
        }
        return t;
    }

    @TestFactory
    Stream<DynamicTest> crossEntropy() {
        return op("crossEntropy",
                c("N=9 V=1001, rows 2 and 7 ignored, gradScale 1/7, in place", x -> ceCase(x, 9, 1001, 1f / 7, 0f,
                        true, 2, 7)),
                c("N=4 V=37, gradScale 0.37, separate dLogits, loss accumulated onto 1.5", x -> ceCase(x, 4, 37,
                        0.37f, 1.5f, false, 1)),
                c("N=5 V=257, gradScale 0 writes zeros, in place", x -> ceCase(x, 5, 257, 0f, 0.25f, true)));
    }

    private static void ceCase(Ctx x, int n, int v, float gradScale, float loss0, boolean inPlace, int... ignored) {
        float[] logits = x.act(n * v, 3);
        int[] t = targets(x.rng, n, v, ignored);
        Tensor tt = x.ints(t, n), loss = x.inout(new float[]{loss0}, DType.F32, 1);
        Tensor tl = inPlace ? x.inout(logits, x.act, n, v) : x.in(logits, n, v);
        Tensor dl = inPlace ? tl : x.out(x.act, n, v);
        x.be.crossEntropy(tl, tt, gradScale, dl, loss);
        Ref[] r = DoubleOps.crossEntropy(logits, t, v, gradScale, loss0);
        x.check("dLogits", dl, r[0], Arith.SOFTMAX);
        x.check("lossSum", loss, r[1], Arith.SOFTMAX);
    }

    @TestFactory
    Stream<DynamicTest> logProbGather() {
        return op("logProbGather",
                c("N=9 V=1001 T=1, rows 2 and 7 ignored", x -> lpgCase(x, 9, 1001, 1f, 2, 7)),
                c("N=6 V=97 T=0.7, row 5 ignored", x -> lpgCase(x, 6, 97, 0.7f, 5)));
    }

    private static void lpgCase(Ctx x, int n, int v, float temperature, int... ignored) {
        float[] logits = x.act(n * v, 3);
        int[] t = targets(x.rng, n, v, ignored);
        Tensor tl = x.in(logits, n, v), tt = x.ints(t, n), logp = x.out(DType.F32, n), lse = x.out(DType.F32, n);
        x.be.logProbGather(tl, tt, temperature, logp, lse);
        Ref[] r = DoubleOps.logProbGather(logits, t, v, temperature);
        x.check("logp", logp, r[0], Arith.SOFTMAX);
        x.check("lse", lse, r[1], Arith.SOFTMAX);
    }

    @TestFactory
    Stream<DynamicTest> logProbGatherBackward() {
        return op("logProbGatherBackward",
                c("N=9 V=1001 T=1, rows 2 and 7 ignored, row 4 with dLogp 0, separate dLogits",
                        x -> lpgbCase(x, 9, 1001, 1f, false, 2, 7)),
                c("N=6 V=97 T=0.7, row 5 ignored, row 4 with dLogp 0, in place",
                        x -> lpgbCase(x, 6, 97, 0.7f, true, 5)));
    }

    private static void lpgbCase(Ctx x, int n, int v, float temperature, boolean inPlace, int... ignored) {
        float[] logits = x.act(n * v, 3);
        int[] t = targets(x.rng, n, v, ignored);
        float[] lse = x.as(DType.F32, DoubleOps.logProbGather(logits, t, v, temperature)[1].v());
        float[] dLogp = x.randn(DType.F32, n, 1);
        dLogp[4] = 0f;
        Tensor tl = inPlace ? x.inout(logits, x.act, n, v) : x.in(logits, n, v);
        Tensor tt = x.ints(t, n), ts = x.in(lse, DType.F32, n), tg = x.in(dLogp, DType.F32, n);
        Tensor dl = inPlace ? tl : x.out(x.act, n, v);
        x.be.logProbGatherBackward(tl, tt, ts, tg, temperature, dl);
        x.check("dLogits", dl, DoubleOps.logProbGatherBackward(logits, t, lse, dLogp, v, temperature), Arith.SOFTMAX);
    }

    @TestFactory
    Stream<DynamicTest> grpoLoss() {
        return op("grpoLoss",
                c("TOKEN, clip 0.2/0.2, beta 0, old log-probs", x -> grpoCase(x,
                        new GrpoSpec(0.2, 0.2, 0, GrpoSpec.Aggregation.TOKEN, 11), true, false)),
                c("SEQUENCE, clip 0.2/0.28, beta 0.04, old log-probs", x -> grpoCase(x,
                        new GrpoSpec(0.2, 0.28, 0.04, GrpoSpec.Aggregation.SEQUENCE, 11), true, true)),
                c("DR_GRPO Lmax 24, clip 0.2/0.28, beta 0.04, on-policy (oldLogp null)", x -> grpoCase(x,
                        new GrpoSpec(0.2, 0.28, 0.04, GrpoSpec.Aggregation.DR_GRPO, 24), false, true)),
                c("TOKEN, clip 0.1/0.3, beta 0.04, on-policy (oldLogp null)", x -> grpoCase(x,
                        new GrpoSpec(0.1, 0.3, 0.04, GrpoSpec.Aggregation.TOKEN, 11), false, true)));
    }

    /** B=4, L=11: row 3 has an empty mask, advantage 0 on row 2; old log-probs keep clear of the clip edges. */
    private static void grpoCase(Ctx x, GrpoSpec spec, boolean withOld, boolean withRef) {
        int b = 4, len = 11, n = b * len;
        float[] logp = new float[n], old = withOld ? new float[n] : null, ref = withRef ? new float[n] : null;
        float[] mask = new float[n];
        float[] adv = {1.3f, -0.7f, 0f, 0.9f};
        double lo = 1 - spec.clipLow(), hi = 1 + spec.clipHigh();
        for (int i = 0; i < n; i++) {
            logp[i] = (float) -(0.01 + 3 * x.rng.nextDouble());
            if (withOld) {
                float o;
                double r;
                do {
                    o = (float) (logp[i] + 0.3 * x.rng.nextGaussian());
                    r = Math.exp((double) logp[i] - o);
                } while (Math.abs(r - lo) < 1e-3 || Math.abs(r - hi) < 1e-3); // no branch flips by rounding
                old[i] = o;
            }
            if (withRef) {
                ref[i] = (float) (logp[i] + 0.2 * x.rng.nextGaussian());
            }
            int row = i / len, t = i % len;
            mask[i] = row == 3 || t < 2 + row ? 0f : x.rng.nextInt(5) == 0 ? 0f : 1f;
        }
        Tensor tl = x.in(logp, DType.F32, b, len), to = withOld ? x.in(old, DType.F32, b, len) : null;
        Tensor tr = withRef ? x.in(ref, DType.F32, b, len) : null, ta = x.in(adv, DType.F32, b);
        int[] maskInts = new int[n];
        for (int i = 0; i < n; i++) {
            maskInts[i] = (int) mask[i];
        }
        Tensor tm = x.ints(maskInts, b, len), dl = x.out(DType.F32, b, len), st = x.out(DType.F32, 4);
        x.be.grpoLoss(spec, tl, to, tr, ta, tm, dl, st);
        Ref[] r = DoubleOps.grpo(spec, logp, old, ref, adv, mask, b, len);
        x.check("dLogp", dl, r[0], Arith.LOSS);
        x.check("stats [loss, meanRatio, clipFraction, meanKl]", st, r[1], Arith.LOSS);
    }

    // ================================================================== optimizer

    @TestFactory
    Stream<DynamicTest> adamW() {
        List<Case> cases = new ArrayList<>();
        cases.add(c("n=1237, decayEnd 700, no clip scale", x -> adamWCase(x, 1237, 700, Float.NaN, false)));
        cases.add(c("n=1237, decayEnd 1237 (all), clip scale 0.37", x -> adamWCase(x, 1237, 1237, 0.37f, false)));
        cases.add(c("n=301, decayEnd 64, clip scale 1", x -> adamWCase(x, 301, 64, 1f, false)));
        if (be.computes(DType.BF16)) {
            cases.add(c("n=1237, decayEnd 700, clip scale 0.37, BF16 compute copy",
                    x -> adamWCase(x, 1237, 700, 0.37f, true)));
        }
        return op("adamW", cases.toArray(Case[]::new));
    }

    /** Step t = 3 of torch.optim.AdamW; clip NaN = no clip tensor. */
    private static void adamWCase(Ctx x, int n, long decayEnd, float clip, boolean copy) {
        float lr = 1e-2f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.1f;
        double bc1 = 1 - Math.pow(b1, 3), bc2 = 1 - Math.pow(b2, 3);
        float[] p = x.randn(DType.F32, n, 0.5), g = x.randn(DType.F32, n, 0.03), m = x.randn(DType.F32, n, 0.01);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            float s = (float) (0.01 * x.rng.nextGaussian());
            v[i] = s * s + 1e-7f;
        }
        Tensor tp = x.inout(p, DType.F32, n), tg = x.in(g, DType.F32, n);
        Tensor tm = x.inout(m, DType.F32, n), tv = x.inout(v, DType.F32, n);
        Tensor tc = copy ? x.out(DType.BF16, n) : null;
        Tensor ts = Float.isNaN(clip) ? null : x.in(new float[]{clip}, DType.F32, 1);
        x.be.adamW(tp, tg, tm, tv, tc, decayEnd, new AdamWParams(lr, b1, b2, eps, wd, bc1, bc2), ts);
        Ref[] r = DoubleOps.adamW(p, g, m, v, decayEnd, lr, b1, b2, eps, wd, bc1, bc2, Float.isNaN(clip) ? 1f : clip);
        x.check("param", tp, r[0], Arith.ADAMW);
        x.check("m", tm, r[1], Arith.ADAMW);
        x.check("v", tv, r[2], Arith.ADAMW);
        if (copy) {
            x.check("compute copy", tc, r[0], Arith.ADAMW);
            // the compute copy is the master copy rounded to bf16, element for element
            x.exact("compute copy vs bf16(param)", x.read("compute copy", tc), DoubleOps.bf16(x.read("param", tp)));
        }
    }

    // ================================================================== encoder (BERT) ops

    @TestFactory
    Stream<DynamicTest> layerNorm() {
        return op("layerNorm",
                c("5 rows of 384, eps 1e-12", x -> layerNormCase(x, 5, 384, 1e-12f, false)),
                c("3 rows of 37, eps 1e-5", x -> layerNormCase(x, 3, 37, 1e-5f, false)),
                c("7 rows of 64, out == x", x -> layerNormCase(x, 7, 64, 1e-5f, true)));
    }

    private static void layerNormCase(Ctx x, int rows, int d, float eps, boolean alias) {
        float[] xs = x.act(rows * d, 2), w = x.act(d, 1), b = x.act(d, 1);
        for (int i = 0; i < xs.length; i++) {
            xs[i] = x.as(x.act, new double[]{xs[i] + 1.5})[0]; // an offset mean, so centring matters
        }
        Tensor tx = alias ? x.inout(xs, x.act, rows, d) : x.in(xs, rows, d), tw = x.in(w, d), tb = x.in(b, d);
        Tensor out = alias ? tx : x.out(x.act, rows, d);
        x.be.layerNorm(tx, tw, tb, eps, out);
        x.check("out", out, DoubleOps.layerNorm(xs, w, b, eps, rows, d), Arith.NORM);
    }

    @TestFactory
    Stream<DynamicTest> gelu() {
        return op("gelu",
                c("(1001), |x| up to ~10", x -> geluCase(x, false)),
                c("(1001), out == x", x -> geluCase(x, true)));
    }

    private static void geluCase(Ctx x, boolean alias) {
        float[] xs = x.act(1001, 3);
        Tensor tx = alias ? x.inout(xs, x.act, 1001) : x.in(xs, 1001), out = alias ? tx : x.out(x.act, 1001);
        x.be.gelu(tx, out);
        x.check("out", out, DoubleOps.gelu(xs), Arith.ELEMENTWISE_FN);
    }

    @TestFactory
    Stream<DynamicTest> bidirectionalAttention() {
        Attn[] cases = {
                self("B=3 T=19 H=4/4 D=16, right padding, row 2 fully padded", 3, 19, 4, 4, 16, new int[]{7, 19, 0}),
                self("B=2 T=33 H=2/2 D=32, no mask", 2, 33, 2, 2, 32, null),
                self("B=1 T=130 H=3/1 D=48, right padding", 1, 130, 3, 1, 48, new int[]{11}),
                self("B=2 T=17 H=2/1 D=64, right padding", 2, 17, 2, 1, 64, new int[]{0, 2}),
                self("B=1 T=5 H=2/2 D=128, no mask", 1, 5, 2, 2, 128, null),
        };
        return op("bidirectionalAttention", Arrays.stream(cases).map(a -> c(a.name(), x -> {
            AttentionShape s = a.shape();
            float[][] qkv = qkv(x, a);
            // BERT pads on the right: pads[b] here counts trailing padding keys
            int[] mask = null;
            if (a.pads() != null) {
                mask = new int[a.batch() * a.kStride()];
                for (int b = 0; b < a.batch(); b++) {
                    for (int j = 0; j < a.kStride(); j++) {
                        mask[b * a.kStride() + j] = j < a.kLen() - a.pads()[b] ? 1 : 0;
                    }
                }
            }
            int qw = a.heads() * a.headDim(), kw = a.kvHeads() * a.headDim();
            Tensor q = x.in(qkv[0], a.batch(), a.qLen(), qw), k = x.in(qkv[1], a.batch(), a.kStride(), kw);
            Tensor v = x.in(qkv[2], a.batch(), a.kStride(), kw);
            Tensor m = mask == null ? null : x.ints(mask, a.batch(), a.kStride());
            Tensor out = x.out(x.act, a.batch(), a.qLen(), qw);
            x.be.bidirectionalAttention(q, k, v, out, s, m);
            x.check("out", out, DoubleOps.attention(qkv[0], qkv[1], qkv[2], mask, s, false)[0], Arith.ATTENTION);
        })).toArray(Case[]::new));
    }

    @TestFactory
    Stream<DynamicTest> meanPool() {
        return op("meanPool",
                c("B=3 T=19 C=37, mask with a fully padded row", x -> meanPoolCase(x, true)),
                c("B=3 T=19 C=37, no mask", x -> meanPoolCase(x, false)));
    }

    private static void meanPoolCase(Ctx x, boolean masked) {
        int b = 3, t = 19, cc = 37;
        float[] xs = x.act(b * t * cc, 1);
        int[] mask = null;
        if (masked) {
            mask = new int[b * t];
            for (int j = 0; j < t; j++) {
                mask[j] = j < 12 ? 1 : 0;
                mask[t + j] = 0;
                mask[2 * t + j] = j % 3 == 0 ? 0 : 1;
            }
        }
        Tensor tx = x.in(xs, b, t, cc), tm = masked ? x.ints(mask, b, t) : null, out = x.out(x.act, b, cc);
        x.be.meanPool(tx, tm, out);
        x.check("pooled", out, DoubleOps.meanPool(xs, mask, b, t, cc), Arith.SUM);
    }

    @TestFactory
    Stream<DynamicTest> l2NormalizeRows() {
        return op("l2NormalizeRows",
                c("5 rows of 384, row 3 below eps (1e-14 scale)", x -> {
                    int rows = 5, w = 384;
                    float[] xs = x.act(rows * w, 1);
                    float[] tiny = x.act(w, 1e-14);
                    System.arraycopy(tiny, 0, xs, 3 * w, w);
                    Tensor t = x.inout(xs, x.act, rows, w);
                    x.be.l2NormalizeRows(t, 1e-12f);
                    x.check("x", t, DoubleOps.l2Normalize(xs, rows, w, 1e-12f), Arith.NORM);
                }));
    }

    @TestFactory
    Stream<DynamicTest> cosineSimilarity() {
        return op("cosineSimilarity",
                c("P=5 G=7 D=384: each reference against its G rows (the reward's layout)", x -> cosineCase(x, 5, 7, 384,
                        -1)),
                c("P=13 G=1 D=37: row i against row i", x -> cosineCase(x, 13, 1, 37, -1)),
                c("P=3 G=4 D=1024, reference 1 all zeros (cos 0, not NaN)", x -> cosineCase(x, 3, 4, 1024, 1)));
    }

    private static void cosineCase(Ctx x, int p, int g, int d, int zeroRef) {
        float[] ref = x.act(p * d, 1), xs = x.act(p * g * d, 1);
        // rows that share direction with their reference, so values spread over (-1, 1) instead of sitting near 0
        for (int r = 0; r < p * g; r++) {
            double w = (r % 5) - 2;
            for (int k = 0; k < d; k++) {
                xs[r * d + k] = x.as(x.act, new double[]{xs[r * d + k] + w * ref[(r / g) * d + k]})[0];
            }
        }
        if (zeroRef >= 0) {
            Arrays.fill(ref, zeroRef * d, (zeroRef + 1) * d, 0f);
        }
        Tensor tr = x.in(ref, p, d), tx = x.in(xs, p * g, d), out = x.out(DType.F32, p * g);
        x.be.cosineSimilarity(tr, tx, out);
        x.check("cos", out, DoubleOps.cosine(ref, xs, p, g, d, 1e-8), Arith.NORM);
    }

    @TestFactory
    Stream<DynamicTest> groupAdvantages() {
        return op("groupAdvantages",
                c("P=7 G=8 scaled by the group's std, group 2 all equal (exactly 0)", x -> advantagesCase(x, 7, 8,
                        true, 2)),
                c("P=4 G=64 scaled (a block per group on a GPU)", x -> advantagesCase(x, 4, 64, true, -1)),
                c("P=5 G=6 centred only (Dr. GRPO)", x -> advantagesCase(x, 5, 6, false, -1)),
                c("P=3 G=1: every advantage 0", x -> advantagesCase(x, 3, 1, true, -1)));
    }

    private static void advantagesCase(Ctx x, int p, int g, boolean scaleByStd, int equalGroup) {
        float eps = 1e-4f;
        // rewards are cosines: values in (-1, 1) around a per-group level
        float[] r = x.randn(DType.F32, p * g, 0.3);
        for (int i = 0; i < r.length; i++) {
            r[i] = (float) Math.tanh(r[i] + 0.2 * (i / g));
        }
        if (equalGroup >= 0) {
            Arrays.fill(r, equalGroup * g, (equalGroup + 1) * g, 0.3f);
        }
        Tensor tr = x.in(r, DType.F32, p, g), out = x.out(DType.F32, p, g);
        x.be.groupAdvantages(tr, g, scaleByStd, eps, out);
        x.check("advantages", out, DoubleOps.groupAdvantages(r, p, g, scaleByStd, eps), Arith.NORM);
        if (equalGroup >= 0) {
            float[] got = x.read("advantages", out);
            for (int i = equalGroup * g; i < (equalGroup + 1) * g; i++) {
                if (got[i] != 0f) {
                    fail(x.where + ": advantage " + i + " of a group of equal rewards is " + got[i] + ", not 0");
                }
            }
        }
    }

    /**
     * The backend under test, for a subclass's extra tests.
     *
     * @return the backend, once the class is open
     */
    protected final Backend backend() {
        return be;
    }
}
