/**
 * Hand-written FFM bindings of the CUDA driver API ({@link dev.rlsr.bindings.CudaDriver}), NVRTC
 * ({@link dev.rlsr.bindings.Nvrtc}, {@link dev.rlsr.bindings.KernelCache}), cuBLAS ({@link dev.rlsr.bindings.Cublas}),
 * cuBLASLt ({@link dev.rlsr.bindings.CublasLt}) and NCCL ({@link dev.rlsr.bindings.Nccl}); JDK only.
 *
 * <p>Legend: device pointers (CUdeviceptr) and native handles (CUcontext, CUstream, CUevent, CUmodule,
 * CUfunction, CUgraph, cublasHandle_t, ncclComm_t) are plain {@code long} addresses; stream 0 is the legacy
 * default stream. Matrices handed to cuBLAS/cuBLASLt are column-major {@code (rows, cols)} with a leading
 * dimension; bf16 data travels as {@code short} bits. Libraries are found by soname (overridable with
 * {@code -Drlsr.lib.cuda|nvrtc|cublas|cublaslt|nccl=path-or-name}) and bound lazily, so everything here loads
 * on a machine without CUDA and fails only when called, naming the missing library or symbol.
 */
package dev.rlsr.bindings;
