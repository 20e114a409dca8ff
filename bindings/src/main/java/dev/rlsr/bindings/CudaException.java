package dev.rlsr.bindings;

/**
 * A native call of the CUDA driver, NVRTC, cuBLAS, cuBLASLt or NCCL returned an error status.
 * The message reads like {@code cuMemAlloc_v2 failed: CUDA_ERROR_OUT_OF_MEMORY (out of memory)}.
 */
public class CudaException extends RuntimeException {
    /** The native function that failed. */
    private final String function;
    /** The raw status code. */
    private final int code;
    /** The status code's name, or null. */
    private final String errorName;
    /** The library's description of the status, or null. */
    private final String errorString;

    /**
     * An exception whose message reads {@code function failed: errorName (errorString)}.
     *
     * @param function    the native function, e.g. {@code cuMemAlloc_v2}
     * @param code        the raw status code
     * @param errorName   the status code's name (e.g. {@code CUDA_ERROR_OUT_OF_MEMORY}), or null/blank if unknown
     * @param errorString the library's description of the status, or null/blank
     */
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

    /** {@return the native function that failed, e.g. {@code cuMemAlloc_v2}} */
    public String function() {
        return function;
    }

    /** {@return the raw status code (CUresult, cublasStatus_t, nvrtcResult, ncclResult_t)} */
    public int code() {
        return code;
    }

    /** {@return the status code's name, e.g. {@code CUDA_ERROR_OUT_OF_MEMORY}, or null} */
    public String errorName() {
        return errorName;
    }

    /** {@return the library's description of the status, e.g. "out of memory", or null} */
    public String errorString() {
        return errorString;
    }
}
