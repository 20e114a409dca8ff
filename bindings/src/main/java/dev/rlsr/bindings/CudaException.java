package dev.rlsr.bindings;

/**
 * A native call of the CUDA driver, NVRTC, cuBLAS, cuBLASLt or NCCL returned an error status.
 * The message reads like {@code cuMemAlloc_v2 failed: CUDA_ERROR_OUT_OF_MEMORY (out of memory)}.
 */
public class CudaException extends RuntimeException {
    private final String function;
    private final int code;
    private final String errorName;
    private final String errorString;

    public CudaException(String function, int code, String errorName, String errorString) {
        super(format(function, code, errorName, errorString));
        this.function = function;
        this.code = code;
        this.errorName = errorName;
        this.errorString = errorString;
    }

    static String format(String function, int code, String errorName, String errorString) {
        String name = errorName == null || errorName.isBlank() ? "error " + code : errorName;
        String detail = errorString == null || errorString.isBlank() || errorString.equals(errorName)
                ? "" : " (" + errorString + ")";
        return function + " failed: " + name + detail;
    }

    /** The native function that failed, e.g. {@code cuMemAlloc_v2}. */
    public String function() {
        return function;
    }

    /** The raw status code (CUresult, cublasStatus_t, nvrtcResult, ncclResult_t). */
    public int code() {
        return code;
    }

    public String errorName() {
        return errorName;
    }

    public String errorString() {
        return errorString;
    }
}
