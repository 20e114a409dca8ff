/**
 * The CUDA kernels of the RLSR engine as a Java API, each with a plain-Java reference of the same contract. Each
 * class's javadoc states its shapes, dtypes, aliasing rules and preconditions; the rules below hold for all of them.
 *
 * <table class="striped">
 * <caption>The kernels</caption>
 * <thead><tr><th>source</th><th>Java API</th><th>contract</th><th>CPU reference</th></tr></thead>
 * <tbody>
 * <tr><td>{@code cosine_similarity.cu}</td><td>{@link dev.rlsr.kernels.CosineSimilarity}</td>
 *     <td>pairs {@code (N,D) x (N,D) -> (N)}; one reference {@code (P,D)} against G responses
 *     {@code (P,G,D) -> (P,G)}; fp32 or bf16 in, fp32 out</td>
 *     <td>{@link dev.rlsr.kernels.CosineSimilarityReference}</td></tr>
 * <tr><td>{@code logprob_gather.cu}</td><td>{@link dev.rlsr.kernels.LogprobGather}</td>
 *     <td>{@code logits (N,V)} fp32/bf16, {@code targets (N)} int32 -> {@code logp (N)}, {@code lse (N)} in one
 *     pass; backward in place or out of place</td>
 *     <td>{@link dev.rlsr.kernels.LogprobGatherReference}</td></tr>
 * <tr><td>{@code group_advantages.cu}</td><td>{@link dev.rlsr.kernels.GroupAdvantages}</td>
 *     <td>{@code rewards (P,G) -> advantages (P,G)}, GRPO or Dr. GRPO normalisation, one launch</td>
 *     <td>{@link dev.rlsr.kernels.GroupAdvantagesReference}</td></tr>
 * <tr><td>{@code cast.cu}</td><td>{@link dev.rlsr.kernels.Cast}</td>
 *     <td>fp32 &lt;-&gt; bf16 of n elements</td>
 *     <td>{@link dev.rlsr.kernels.CastReference}</td></tr>
 * <tr><td>{@code elementwise.cu}</td><td>{@link dev.rlsr.kernels.Elementwise}</td>
 *     <td>fill, add, scale, bias gradient (column sums, deterministic)</td>
 *     <td>{@link dev.rlsr.kernels.ElementwiseReference}</td></tr>
 * <tr><td>{@code copy_rows.cu}</td><td>{@link dev.rlsr.kernels.CopyRows}</td>
 *     <td>strided row copy (KV-cache append), gather rows by int32 index</td>
 *     <td>{@link dev.rlsr.kernels.CopyRowsReference}</td></tr>
 * <tr><td>{@code argmax.cu}</td><td>{@link dev.rlsr.kernels.Argmax}</td>
 *     <td>row-wise argmax {@code (R,W) -> (R)} int32, torch semantics</td>
 *     <td>{@link dev.rlsr.kernels.ArgmaxReference}</td></tr>
 * <tr><td>{@code sampling.cu}</td><td>{@link dev.rlsr.kernels.Sampling}</td>
 *     <td>one decode step: {@code logits (B,V)} fp32/bf16 -> tokens {@code (B)} int32 and log-probs {@code (B)}
 *     fp32; per-row temperature, top-k, top-p; Philox4x32-10 of (seed, row, step); stop ids, finished rows and
 *     counters in device memory; the same token as the reference</td>
 *     <td>{@link dev.rlsr.kernels.SamplingReference}</td></tr>
 * <tr><td>{@code embedding.cu}</td><td>{@link dev.rlsr.kernels.Embedding}</td>
 *     <td>forward gather, deterministic scatter-add backward into an fp32 table gradient</td>
 *     <td>{@link dev.rlsr.kernels.EmbeddingReference}</td></tr>
 * <tr><td>{@code rope.cu}</td><td>{@link dev.rlsr.kernels.Rope}</td>
 *     <td>cos/sin table from int32 positions, rotation in place (forward and inverse)</td>
 *     <td>{@link dev.rlsr.kernels.RopeReference}</td></tr>
 * <tr><td>{@code swiglu.cu}</td><td>{@link dev.rlsr.kernels.Swiglu}</td>
 *     <td>{@code h = silu(g) * u} and its backward</td>
 *     <td>{@link dev.rlsr.kernels.SwigluReference}</td></tr>
 * <tr><td>{@code (cuBLASLt)}</td><td>{@link dev.rlsr.kernels.Gemm}</td>
 *     <td>row-major {@code D = alpha op(A) op(B) + beta C (+ bias)}, fp32 accumulation, fp32/bf16</td>
 *     <td>{@link dev.rlsr.kernels.GemmReference}</td></tr>
 * </tbody>
 * </table>
 *
 * <h2>Rules every kernel call follows</h2>
 * <ul>
 *   <li><b>Memory is the caller's.</b> Every tensor is a device address ({@code CUdeviceptr} as a {@code long}),
 *       row-major and dense, sizes passed explicitly; a pointer must be aligned to its element size. Memory from
 *       any CUDA binding works: {@code dev.rlsr.bindings} ({@code DeviceBuffer}), JCuda (whose
 *       {@code CUdeviceptr} keeps the address in a protected method; a two-line subclass exposes it), JavaCPP
 *       ({@code Pointer.address()}) or other FFM code. No launch allocates memory: {@code Gemm} allocates its
 *       workspace once when created, {@code Embedding}'s backward takes scratch memory from the caller.</li>
 *   <li><b>Context.</b> A kernel runs in the calling thread's <em>current</em> CUDA context, and the memory must
 *       belong to it. Make one current before the first call: {@code CudaContext.open(0)}, JCuda's
 *       {@code cuCtxSetCurrent}, or a CUDA runtime call such as {@code cudaSetDevice} followed by
 *       {@code cudaFree(null)}. The first call per context compiles the kernel's source with NVRTC for that
 *       device's architecture (cached on disk, {@code -Drlsr.kernel.cache=DIR}, default
 *       {@code ~/.cache/rlsr/kernels}) and loads it; later calls cost one {@code cuLaunchKernel}. See
 *       {@link dev.rlsr.kernels.CudaKernels} for how a primary context is kept alive and what to do before
 *       destroying a context you created.</li>
 *   <li><b>Stream.</b> Every launcher takes a {@code CUstream} handle as a {@code long} (0 = the legacy default
 *       stream; a {@code cudaStream_t} is the same handle); a {@code Gemm} instance is bound to the stream it was
 *       created for. A launch is asynchronous and the host is never
 *       synchronised: synchronise the stream (or the context) before reading results on the host, and order
 *       dependent work on one stream or with events.</li>
 *   <li><b>Dtypes.</b> Activations are {@link dev.rlsr.kernels.DType#F32} or {@link dev.rlsr.kernels.DType#BF16}
 *       (bf16 travels as raw 16-bit patterns, {@link dev.rlsr.kernels.BF16} converts on the host); token ids and
 *       targets are int32; statistics and losses are fp32; accumulation is always fp32.</li>
 *   <li><b>Errors.</b> Every launcher checks its arguments on the host (null or misaligned pointers, non-positive
 *       sizes, overlapping outputs, temperature or eps) and throws {@link java.lang.IllegalArgumentException}
 *       naming the argument before anything is launched. With no current context the call throws
 *       {@link java.lang.IllegalStateException}; a failing CUDA call throws {@code dev.rlsr.bindings.CudaException}
 *       naming the function and the error. Device-side faults (a bad address) surface at the next synchronising
 *       CUDA call, as with any CUDA launch.</li>
 *   <li><b>Threads.</b> Launchers are thread-safe; each thread needs its own current context (the same context may
 *       be current on several threads).</li>
 *   <li><b>References.</b> Each {@code *Reference} class computes the same contract on Java arrays
 *       ({@code float[]}, or {@code short[]} holding bf16 bits) in double precision, rows in parallel; the CPU
 *       trainer uses them as its implementation.</li>
 * </ul>
 *
 * <p>A compiled example of all of this is {@code examples/kernels-jcuda} in the source repository.
 */
package dev.rlsr.kernels;
