package dev.rlsr.kernels;

import dev.rlsr.bindings.CudaDriver;
import dev.rlsr.bindings.KernelCache;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Loads the CUDA kernels of this project: reads {@code rlsr/cuda/<file>.cu} from the class path (module
 * {@code native} ships them), compiles it with NVRTC for the architecture of the device of the calling thread's
 * current context (through {@link KernelCache}, so a cubin is compiled once per machine), loads the module once per
 * context and caches the {@code CUfunction} handles. Thread-safe.
 *
 * <p>The caller owns the context: make one current first ({@code CudaContext.open}, or JCuda/JavaCPP's own
 * {@code cuCtxSetCurrent}). When the current context is a device's primary context, this class keeps one retain on
 * it, so the primary context (and with it every module loaded here) stays alive until the JVM exits, even if the
 * caller releases it; the cached handles then never go stale. A context the caller created itself must outlive
 * the kernels launched in it, or be passed to {@link #forget(long)} before it is destroyed.
 */
public final class CudaKernels {
    /** Class-path folder of the kernel sources. */
    public static final String RESOURCE_DIR = "rlsr/cuda/";
    /** NVRTC options besides the architecture: none, so the cached cubin's key is the source and the arch. */
    static final List<String> NVRTC_OPTIONS = List.of();

    private record ModuleKey(long context, String file) {
    }

    private record FunctionKey(long context, String file, String kernel) {
    }

    private static final Map<String, String> SOURCES = new ConcurrentHashMap<>();
    private static final Map<Long, String> ARCH_OF_CONTEXT = new ConcurrentHashMap<>();
    private static final Map<ModuleKey, Long> MODULES = new ConcurrentHashMap<>();
    private static final Map<FunctionKey, Long> FUNCTIONS = new ConcurrentHashMap<>();

    private CudaKernels() {
    }

    /**
     * The source text of {@code rlsr/cuda/<file>.cu}, e.g. {@code source("logprob_gather")}, with every
     * {@code #include "<name>.cuh"} line replaced by that header's text from the same folder (once per header), so
     * NVRTC gets one self-contained program and the cubin cache key covers the headers too.
     */
    public static String source(String file) {
        return SOURCES.computeIfAbsent(file, f -> expandIncludes(readResource(f + ".cu"), new java.util.HashSet<>()));
    }

    private static final java.util.regex.Pattern INCLUDE =
            java.util.regex.Pattern.compile("(?m)^[ \\t]*#[ \\t]*include[ \\t]*\"([A-Za-z0-9_]+\\.cuh)\"[^\\n]*$");

    private static String expandIncludes(String text, java.util.Set<String> seen) {
        java.util.regex.Matcher m = INCLUDE.matcher(text);
        StringBuilder out = new StringBuilder();
        while (m.find()) {
            String header = m.group(1);
            String body = seen.add(header) ? expandIncludes(readResource(header), seen) : "";
            m.appendReplacement(out, java.util.regex.Matcher.quoteReplacement(
                    "// ---- begin " + header + "\n" + body + "\n// ---- end " + header));
        }
        m.appendTail(out);
        return out.toString();
    }

    private static String readResource(String name) {
        String path = RESOURCE_DIR + name;
        ClassLoader loader = CudaKernels.class.getClassLoader();
        try (InputStream in = loader.getResourceAsStream(path)) {
            if (in == null) {
                throw new IllegalStateException("CUDA kernel source " + path + " is not on the class path: add the "
                        + "dependency dev.rlsr:rlsr-native");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + path, e);
        }
    }

    /** The CUfunction {@code kernel} of {@code file}.cu in the calling thread's current context. */
    public static long function(String file, String kernel) {
        long ctx = currentContext();
        Long fn = FUNCTIONS.get(new FunctionKey(ctx, file, kernel));
        if (fn != null) {
            return fn;
        }
        long module = module(ctx, file);
        return FUNCTIONS.computeIfAbsent(new FunctionKey(ctx, file, kernel),
                k -> CudaDriver.moduleGetFunction(module, kernel));
    }

    /** The NVRTC architecture ("sm_90") of the device of the calling thread's current context. */
    public static String currentArch() {
        return arch(currentContext());
    }

    /**
     * Drops what was cached for {@code context} (a {@code CUcontext} address) and unloads its modules; call it before
     * destroying a context you created yourself. Modules of a destroyed context are gone already, so no unload there.
     */
    public static synchronized void forget(long context) {
        FUNCTIONS.keySet().removeIf(k -> k.context() == context);
        ARCH_OF_CONTEXT.remove(context);
        MODULES.entrySet().removeIf(e -> {
            if (e.getKey().context() != context) {
                return false;
            }
            if (CudaDriver.contextGetCurrent() == context) {
                CudaDriver.moduleUnload(e.getValue());
            }
            return true;
        });
    }

    private static long currentContext() {
        long ctx = CudaDriver.contextGetCurrent();
        if (ctx == 0) {
            throw new IllegalStateException("no CUDA context is current on thread " + Thread.currentThread().getName()
                    + ": open one (CudaContext.open(0), or cuCtxSetCurrent from JCuda/JavaCPP) before launching kernels");
        }
        return ctx;
    }

    private static long module(long ctx, String file) {
        ModuleKey key = new ModuleKey(ctx, file);
        Long m = MODULES.get(key);
        if (m != null) {
            return m;
        }
        String arch = arch(ctx);
        String src = source(file);
        // compile outside the lock: NVRTC takes seconds the first time, and KernelCache writes atomically
        byte[] cubin = KernelCache.cubin(src, file + ".cu", arch, NVRTC_OPTIONS);
        synchronized (CudaKernels.class) {
            m = MODULES.get(key);
            if (m == null) {
                m = CudaDriver.moduleLoadData(cubin);
                MODULES.put(key, m);
            }
            return m;
        }
    }

    private static String arch(long ctx) {
        String a = ARCH_OF_CONTEXT.get(ctx);
        if (a == null) {
            synchronized (CudaKernels.class) {
                a = ARCH_OF_CONTEXT.computeIfAbsent(ctx, CudaKernels::resolveArch);
            }
        }
        return a;
    }

    // The arch of the context's device; for a primary context, one retain is kept (see the class comment).
    private static String resolveArch(long ctx) {
        int dev = CudaDriver.contextGetDevice();
        long primary = CudaDriver.primaryContextRetain(dev);
        if (primary != ctx) {
            CudaDriver.primaryContextRelease(dev);
        }
        return CudaDriver.arch(dev);
    }

}
