// The host cost of one kernel launch, measured in C against the CUDA driver itself: the baseline for
// LaunchOverheadBench (JMH, the same launch from Java). Same kernel, same arguments, same bursts:
//   cosine_similarity_f32_kernel(x, y, out, rows 1, group 1, d 1, eps 1e-8f, wpr 1), grid 1, block 256,
//   on a stream made with cuStreamCreate(flags 0), BURST = 128 launches per timed burst, the stream synchronised
//   before each burst outside the timed region; plus an empty kernel (0 parameters) for the driver's floor.
// Reports ns per launch (median, min, p90, mean over the repetitions; CLOCK_MONOTONIC around each burst).
//
//   gcc -std=c11 -O2 -Wall -Wextra -o .gpu/launch_baseline bench/gpu/launch_baseline.c -ldl
//   .gpu/launch_baseline native/cuda/cosine_similarity.cu
//   E=/tmp/emu/librlsr_cuda_emulator.so   # the CUDA emulator (native/emulator/build.sh /tmp/emu): validation and
//   .gpu/launch_baseline --cuda-lib $E --nvrtc-lib $E native/cuda/cosine_similarity.cu   # plumbing, no GPU timings
//
// No link-time CUDA dependency: the driver (default libcuda.so.1) and NVRTC (libnvrtc.so.13, .12, libnvrtc.so) are
// dlopen'ed; --cuda-lib / --nvrtc-lib or RLSR_CUDA_LIB / RLSR_NVRTC_LIB override them (a path or a soname).
// The kernel file is compiled as the Java side does (CudaKernels + Nvrtc): every `#include "X.cuh"` line replaced
// by that header's text from the file's folder, the program named after the file, the only option
// --gpu-architecture=sm_<major><minor> of the device (plus the toolkit's -I when the pasted text still has an
// #include and the toolkit's CUDA major equals NVRTC's), the cubin loaded with cuModuleLoadData.
//
// stdout: human-readable lines, then one JSON line that starts with {"bench":"launch_baseline", (also for a skip or
// a failure, with "skipped": why / "error": why); stderr: only the usage.
// Exit status: 0 measured, or skipped (no driver, cuInit failed, no device: "SKIP launch_baseline: why");
// 1 a failed call or a wrong cosine; 2 bad usage.
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BURST 128
#define MAX_REPS 100000

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef void *CUcontext;
typedef void *CUmodule;
typedef void *CUfunction;
typedef void *CUstream;
typedef int nvrtcResult;
typedef void *nvrtcProgram;

enum { CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76 };

// ---- the driver and NVRTC functions used here, resolved with dlsym --------------------------------------------------
static struct {
    CUresult (*cuGetErrorName)(CUresult, const char **);  // optional
    CUresult (*cuInit)(unsigned);
    CUresult (*cuDriverGetVersion)(int *);
    CUresult (*cuDeviceGetCount)(int *);
    CUresult (*cuDeviceGet)(CUdevice *, int);
    CUresult (*cuDeviceGetName)(char *, int, CUdevice);
    CUresult (*cuDeviceGetAttribute)(int *, int, CUdevice);
    CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice);
    CUresult (*cuDevicePrimaryCtxRelease)(CUdevice);
    CUresult (*cuCtxSetCurrent)(CUcontext);
    CUresult (*cuMemAlloc)(CUdeviceptr *, size_t);
    CUresult (*cuMemFree)(CUdeviceptr);
    CUresult (*cuMemsetD32)(CUdeviceptr, unsigned, size_t);
    CUresult (*cuMemcpyDtoH)(void *, CUdeviceptr, size_t);
    CUresult (*cuStreamCreate)(CUstream *, unsigned);
    CUresult (*cuStreamDestroy)(CUstream);
    CUresult (*cuStreamSynchronize)(CUstream);
    CUresult (*cuModuleLoadData)(CUmodule *, const void *);
    CUresult (*cuModuleUnload)(CUmodule);
    CUresult (*cuModuleGetFunction)(CUfunction *, CUmodule, const char *);
    CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                               CUstream, void **, void **);
    const char *(*nvrtcGetErrorString)(nvrtcResult);
    nvrtcResult (*nvrtcVersion)(int *, int *);
    nvrtcResult (*nvrtcCreateProgram)(nvrtcProgram *, const char *, const char *, int, const char *const *,
                                      const char *const *);
    nvrtcResult (*nvrtcDestroyProgram)(nvrtcProgram *);
    nvrtcResult (*nvrtcCompileProgram)(nvrtcProgram, int, const char *const *);
    nvrtcResult (*nvrtcGetProgramLogSize)(nvrtcProgram, size_t *);
    nvrtcResult (*nvrtcGetProgramLog)(nvrtcProgram, char *);
    nvrtcResult (*nvrtcGetCUBINSize)(nvrtcProgram, size_t *);
    nvrtcResult (*nvrtcGetCUBIN)(nvrtcProgram, char *);
} api;

static char device_name[256] = "";
static int driver_version = 0;
static const char *cuda_lib_name = "";
static const char *nvrtc_lib_name = "";

// ---- JSON output: one line, strings escaped -------------------------------------------------------------------------
static void json_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char) *s;
        if (c == '"' || c == '\\') {
            printf("\\%c", c);
        } else if (c == '\n') {
            fputs("\\n", stdout);
        } else if (c < 0x20) {
            printf("\\u%04x", c);
        } else {
            putchar(c);
        }
    }
    putchar('"');
}

static void json_end_line(const char *field, const char *text) {
    printf("{\"bench\":\"launch_baseline\",\"key\":\"launch_baseline\",\"%s\":", field);
    json_string(text);
    if (device_name[0]) {
        fputs(",\"device\":", stdout);
        json_string(device_name);
    }
    if (driver_version) printf(",\"driver_version\":%d", driver_version);
    printf("}\n");
    fflush(stdout);
}

#if defined(__GNUC__)
#define PRINTF_LIKE __attribute__((format(printf, 1, 2), noreturn))
#else
#define PRINTF_LIKE
#endif
static void skip(const char *fmt, ...) PRINTF_LIKE;
static void fail(const char *fmt, ...) PRINTF_LIKE;

static void skip(const char *fmt, ...) {
    char why[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    printf("SKIP launch_baseline: %s\n", why);
    json_end_line("skipped", why);
    exit(0);
}

static void fail(const char *fmt, ...) {
    char why[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    printf("FAIL launch_baseline: %s\n", why);
    json_end_line("error", why);
    exit(1);
}

static const char *cu_name(CUresult rc) {
    static char buf[32];
    const char *name = NULL;
    if (api.cuGetErrorName && api.cuGetErrorName(rc, &name) == 0 && name) return name;
    snprintf(buf, sizeof buf, "CUresult %d", rc);
    return buf;
}

static const char *nvrtc_name(nvrtcResult rc) {
    static char buf[32];
    if (api.nvrtcGetErrorString) return api.nvrtcGetErrorString(rc);
    snprintf(buf, sizeof buf, "nvrtcResult %d", rc);
    return buf;
}

// a failed call: its text, and the result code by the library's name for it (both result types are int)
#define CHECKED(call, name_of)                                                                    \
    do {                                                                                          \
        int rc_ = (api.call);                                                                     \
        if (rc_ != 0) fail("%s failed: %s (%d)", #call, name_of(rc_), rc_);                       \
    } while (0)
#define CU(call) CHECKED(call, cu_name)
#define NVRTC(call) CHECKED(call, nvrtc_name)

// ---- libraries ------------------------------------------------------------------------------------------------------
static void *open_first(const char *const *names, int n, const char **opened, char *tried, size_t tried_len) {
    tried[0] = '\0';
    for (int i = 0; i < n; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (h) {
            *opened = names[i];
            return h;
        }
        const char *err = dlerror();
        size_t used = strlen(tried);
        snprintf(tried + used, tried_len - used, "%s%s", used ? "; " : "", err ? err : names[i]);
    }
    return NULL;
}

// dlsym into a function pointer without a cast between object and function pointers
static int resolve(void *lib, const char *lib_name, const char *name, void *fn_ptr, size_t fn_size, int required) {
    void *s = dlsym(lib, name);
    if (s == NULL) {
        if (required) fail("%s has no symbol %s", lib_name, name);
        return 0;
    }
    memcpy(fn_ptr, &s, fn_size);
    return 1;
}
#define NEED(lib, field, symbol) resolve((lib), lib_name, (symbol), &api.field, sizeof api.field, 1)
#define MAY(lib, field, symbol) resolve((lib), lib_name, (symbol), &api.field, sizeof api.field, 0)

static void load_driver(void *cu) {
    const char *lib_name = cuda_lib_name;
    MAY(cu, cuGetErrorName, "cuGetErrorName");
    NEED(cu, cuInit, "cuInit");
    NEED(cu, cuDriverGetVersion, "cuDriverGetVersion");
    NEED(cu, cuDeviceGetCount, "cuDeviceGetCount");
    NEED(cu, cuDeviceGet, "cuDeviceGet");
    NEED(cu, cuDeviceGetName, "cuDeviceGetName");
    NEED(cu, cuDeviceGetAttribute, "cuDeviceGetAttribute");
    NEED(cu, cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
    NEED(cu, cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
    NEED(cu, cuCtxSetCurrent, "cuCtxSetCurrent");
    NEED(cu, cuMemAlloc, "cuMemAlloc_v2");
    NEED(cu, cuMemFree, "cuMemFree_v2");
    NEED(cu, cuMemsetD32, "cuMemsetD32_v2");
    NEED(cu, cuMemcpyDtoH, "cuMemcpyDtoH_v2");
    NEED(cu, cuStreamCreate, "cuStreamCreate");
    NEED(cu, cuStreamDestroy, "cuStreamDestroy_v2");
    NEED(cu, cuStreamSynchronize, "cuStreamSynchronize");
    NEED(cu, cuModuleLoadData, "cuModuleLoadData");
    NEED(cu, cuModuleUnload, "cuModuleUnload");
    NEED(cu, cuModuleGetFunction, "cuModuleGetFunction");
    NEED(cu, cuLaunchKernel, "cuLaunchKernel");
}

static void load_nvrtc(void *nv) {
    const char *lib_name = nvrtc_lib_name;
    MAY(nv, nvrtcGetErrorString, "nvrtcGetErrorString");
    NEED(nv, nvrtcVersion, "nvrtcVersion");
    NEED(nv, nvrtcCreateProgram, "nvrtcCreateProgram");
    NEED(nv, nvrtcDestroyProgram, "nvrtcDestroyProgram");
    NEED(nv, nvrtcCompileProgram, "nvrtcCompileProgram");
    NEED(nv, nvrtcGetProgramLogSize, "nvrtcGetProgramLogSize");
    NEED(nv, nvrtcGetProgramLog, "nvrtcGetProgramLog");
    NEED(nv, nvrtcGetCUBINSize, "nvrtcGetCUBINSize");
    NEED(nv, nvrtcGetCUBIN, "nvrtcGetCUBIN");
}

// ---- the kernel source, as CudaKernels.source() makes it ------------------------------------------------------------
typedef struct {
    char *s;
    size_t len, cap;
} Buf;

static void buf_add(Buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (p == NULL) fail("out of memory");
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void buf_str(Buf *b, const char *s) { buf_add(b, s, strlen(s)); }

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) fail("cannot read %s", path);
    Buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) buf_add(&b, chunk, n);
    fclose(f);
    if (b.s == NULL) fail("%s is empty", path);
    return b.s;
}

// A line CudaKernels' pattern takes: ^[ \t]*#[ \t]*include[ \t]*"([A-Za-z0-9_]+\.cuh)"[^\n]*$ -> the header's name
static int include_line(const char *line, size_t len, char *header, size_t header_len) {
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t')) i++;
    if (i >= len || line[i] != '#') return 0;
    i++;
    while (i < len && (line[i] == ' ' || line[i] == '\t')) i++;
    if (len - i < 7 || strncmp(line + i, "include", 7) != 0) return 0;
    i += 7;
    while (i < len && (line[i] == ' ' || line[i] == '\t')) i++;
    if (i >= len || line[i] != '"') return 0;
    size_t start = ++i;
    while (i < len && ((line[i] >= 'A' && line[i] <= 'Z') || (line[i] >= 'a' && line[i] <= 'z') ||
                       (line[i] >= '0' && line[i] <= '9') || line[i] == '_')) {
        i++;
    }
    if (i == start || len - i < 5 || strncmp(line + i, ".cuh\"", 5) != 0) return 0;
    if (i - start + 5 > header_len) return 0;
    memcpy(header, line + start, i - start);
    memcpy(header + (i - start), ".cuh", 5);
    return 1;
}

#define MAX_HEADERS 64
static char seen_headers[MAX_HEADERS][128];
static int n_seen;

// every include line replaced by "// ---- begin X\n" + X expanded (once per program) + "\n// ---- end X"
static void expand(const char *dir, const char *text, Buf *out) {
    const char *p = text;
    for (;;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t) (nl - p) : strlen(p);
        char header[128];
        if (include_line(p, len, header, sizeof header)) {
            int seen = 0;
            for (int i = 0; i < n_seen; i++) seen |= strcmp(seen_headers[i], header) == 0;
            buf_str(out, "// ---- begin ");
            buf_str(out, header);
            buf_str(out, "\n");
            if (!seen) {
                if (n_seen == MAX_HEADERS) fail("more than %d headers", MAX_HEADERS);
                snprintf(seen_headers[n_seen++], sizeof seen_headers[0], "%s", header);
                char path[4096];
                snprintf(path, sizeof path, "%s/%s", dir, header);
                char *body = read_file(path);
                expand(dir, body, out);
                free(body);
            }
            buf_str(out, "\n// ---- end ");
            buf_str(out, header);
        } else {
            buf_add(out, p, len);
        }
        if (nl == NULL) break;
        buf_add(out, "\n", 1);
        p = nl + 1;
    }
}

// Nvrtc.toolkitIncludeOptions: -I<cuda>/include (+ cccl) when its cuda.h has NVRTC's CUDA major version
static int toolkit_includes(char opts[2][4200]) {
    char cands[3][4096];
    int n_cands = 0;
    const char *homes[2] = {getenv("CUDA_HOME"), getenv("CUDA_PATH")};
    for (int h = 0; h < 2; h++) {
        if (homes[h] && homes[h][0]) snprintf(cands[n_cands++], sizeof cands[0], "%s/include", homes[h]);
    }
    snprintf(cands[n_cands++], sizeof cands[0], "/usr/local/cuda/include");
    int nv_major = 0, nv_minor = 0;
    if (api.nvrtcVersion(&nv_major, &nv_minor) != 0) return 0;
    for (int c = 0; c < n_cands; c++) {
        const char *inc = cands[c];
        char probe[4200];
        snprintf(probe, sizeof probe, "%s/cuda_bf16.h", inc);
        FILE *f = fopen(probe, "r");
        if (f == NULL) continue;
        fclose(f);
        // the first toolkit found decides, as NativeLibrary.cudaIncludeDir
        snprintf(probe, sizeof probe, "%s/cuda.h", inc);
        int major = -1;
        char line[512];
        if ((f = fopen(probe, "r")) != NULL) {
            while (fgets(line, sizeof line, f)) {
                const char *l = line;
                while (*l == ' ' || *l == '\t') l++;
                if (strncmp(l, "#define CUDA_VERSION ", 21) == 0) {
                    major = atoi(l + 21) / 1000;
                    break;
                }
            }
            fclose(f);
        }
        if (major != nv_major) return 0;
        int n = 0;
        snprintf(opts[n++], sizeof opts[0], "-I%s", inc);
        snprintf(probe, sizeof probe, "%s/cccl", inc);
        if ((f = fopen(probe, "r")) != NULL) {  // a folder opens for reading on Linux
            fclose(f);
            snprintf(opts[n++], sizeof opts[0], "-I%s/cccl", inc);
        }
        return n;
    }
    return 0;
}

// NVRTC -> cubin; 0 on success, else the nvrtcResult of nvrtcCompileProgram with its log in *log (malloc'ed)
static int compile(const char *source, const char *name, const char *arch, char **image, char **log) {
    char opt_arch[64];
    char inc[2][4200];
    const char *opts[3];
    int n = 0;
    snprintf(opt_arch, sizeof opt_arch, "--gpu-architecture=%s", arch);
    opts[n++] = opt_arch;
    if (strstr(source, "#include")) {
        int k = toolkit_includes(inc);
        for (int i = 0; i < k; i++) opts[n++] = inc[i];
    }
    nvrtcProgram prog = NULL;
    NVRTC(nvrtcCreateProgram(&prog, source, name, 0, NULL, NULL));
    nvrtcResult rc = api.nvrtcCompileProgram(prog, n, opts);
    if (rc != 0) {
        size_t len = 0;
        *log = NULL;
        if (api.nvrtcGetProgramLogSize(prog, &len) == 0 && len > 0 && (*log = malloc(len + 1)) != NULL) {
            if (api.nvrtcGetProgramLog(prog, *log) != 0) (*log)[0] = '\0';
            (*log)[len] = '\0';
        }
        api.nvrtcDestroyProgram(&prog);
        return rc;
    }
    size_t size = 0;
    NVRTC(nvrtcGetCUBINSize(prog, &size));
    if (size == 0) fail("nvrtcGetCUBINSize(%s, %s): empty cubin", name, arch);
    *image = malloc(size);
    if (*image == NULL) fail("out of memory");
    NVRTC(nvrtcGetCUBIN(prog, *image));
    NVRTC(nvrtcDestroyProgram(&prog));
    return 0;
}

// ---- timing ---------------------------------------------------------------------------------------------------------
static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double) t.tv_sec * 1e9 + (double) t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

typedef struct {
    int reps;
    double median_ns, min_ns, p90_ns, mean_ns;
} Stats;

// warm-up bursts, then up to `reps` timed bursts of BURST launches (fewer when budget_s runs out, at least 5);
// the stream is synchronised before each burst, outside the timed region
static Stats measure(CUfunction fn, void **params, CUstream stream, int warmup, int reps, double budget_s) {
    static double per_launch[MAX_REPS];
    for (int w = 0; w < warmup; w++) {
        CU(cuStreamSynchronize(stream));
        for (int i = 0; i < BURST; i++) CU(cuLaunchKernel(fn, 1, 1, 1, 256, 1, 1, 0, stream, params, NULL));
    }
    const double deadline = now_ns() + budget_s * 1e9;
    int done = 0;
    while (done < reps) {
        CU(cuStreamSynchronize(stream));
        double t0 = now_ns();
        for (int i = 0; i < BURST; i++) {
            CUresult rc = api.cuLaunchKernel(fn, 1, 1, 1, 256, 1, 1, 0, stream, params, NULL);
            if (rc != 0) fail("cuLaunchKernel failed: %s (%d)", cu_name(rc), rc);
        }
        double t1 = now_ns();
        per_launch[done++] = (t1 - t0) / BURST;
        if (done >= 5 && t1 > deadline) break;
    }
    CU(cuStreamSynchronize(stream));
    qsort(per_launch, (size_t) done, sizeof per_launch[0], cmp_double);
    Stats s = {done, 0, per_launch[0], per_launch[(int) (0.9 * (done - 1))], 0};
    s.median_ns = done % 2 ? per_launch[done / 2] : 0.5 * (per_launch[done / 2 - 1] + per_launch[done / 2]);
    for (int i = 0; i < done; i++) s.mean_ns += per_launch[i] / done;
    return s;
}

static void print_stats(const char *label, const Stats *s) {
    printf("  %-44s median %8.1f ns  min %8.1f ns  p90 %8.1f ns  (%d bursts of %d)\n", label, s->median_ns, s->min_ns,
           s->p90_ns, s->reps, BURST);
}

static void json_stats(const char *field, const char *kernel, int nparams, const Stats *s, const char *skipped) {
    printf(",\"%s\":{\"kernel\":\"%s\",\"params\":%d,", field, kernel, nparams);
    if (skipped) {
        fputs("\"skipped\":", stdout);
        json_string(skipped);
        putchar('}');
        return;
    }
    printf("\"median_ns\":%.1f,\"min_ns\":%.1f,\"p90_ns\":%.1f,\"mean_ns\":%.1f,\"repetitions\":%d}", s->median_ns,
           s->min_ns, s->p90_ns, s->mean_ns, s->reps);
}

static void usage(void) {
    fprintf(stderr,
            "usage: launch_baseline [--cuda-lib LIB] [--nvrtc-lib LIB] [--reps N] [--warmup N] [--budget S] KERNEL.cu\n"
            "  KERNEL.cu     native/cuda/cosine_similarity.cu (its #include \"X.cuh\" lines are read from its folder)\n"
            "  --cuda-lib    the driver library, path or soname (env RLSR_CUDA_LIB; default libcuda.so.1)\n"
            "  --nvrtc-lib   NVRTC (env RLSR_NVRTC_LIB; default libnvrtc.so.13, libnvrtc.so.12, libnvrtc.so)\n"
            "  --reps N      timed bursts of %d launches per kernel (default 200)\n"
            "  --warmup N    untimed bursts first (default 20)\n"
            "  --budget S    seconds of timed bursts per kernel at most (default 2; at least 5 bursts)\n",
            BURST);
    exit(2);
}

int main(int argc, char **argv) {
    const char *cuda_lib = getenv("RLSR_CUDA_LIB");
    const char *nvrtc_lib = getenv("RLSR_NVRTC_LIB");
    const char *cu_path = NULL;
    int reps = 200, warmup = 20;
    double budget = 2.0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--cuda-lib") == 0 && i + 1 < argc) {
            cuda_lib = argv[++i];
        } else if (strcmp(a, "--nvrtc-lib") == 0 && i + 1 < argc) {
            nvrtc_lib = argv[++i];
        } else if (strcmp(a, "--reps") == 0 && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (strcmp(a, "--warmup") == 0 && i + 1 < argc) {
            warmup = atoi(argv[++i]);
        } else if (strcmp(a, "--budget") == 0 && i + 1 < argc) {
            budget = atof(argv[++i]);
        } else if (a[0] == '-' || cu_path != NULL) {
            usage();
        } else {
            cu_path = a;
        }
    }
    if (cu_path == NULL || reps < 1 || reps > MAX_REPS || warmup < 0 || !(budget > 0)) usage();

    // ---- the driver: a missing one, a failing cuInit or no device is a skip
    char tried[2048];
    const char *cuda_names[1] = {cuda_lib && *cuda_lib ? cuda_lib : "libcuda.so.1"};
    void *cu = open_first(cuda_names, 1, &cuda_lib_name, tried, sizeof tried);
    if (cu == NULL) skip("no CUDA driver (%s)", tried);
    load_driver(cu);
    const int emulator = dlsym(cu, "rlsr_cuda_emulator_info") != NULL;
    CUresult rc = api.cuInit(0);
    if (rc != 0) skip("cuInit failed: %s (%d)", cu_name(rc), rc);
    api.cuDriverGetVersion(&driver_version);
    int count = 0;
    rc = api.cuDeviceGetCount(&count);
    if (rc != 0) skip("cuDeviceGetCount failed: %s (%d)", cu_name(rc), rc);
    if (count < 1) skip("no CUDA device (cuDeviceGetCount = 0)");
    CUdevice dev;
    CU(cuDeviceGet(&dev, 0));
    CU(cuDeviceGetName(device_name, (int) sizeof device_name, dev));
    int cc_major = 0, cc_minor = 0;
    CU(cuDeviceGetAttribute(&cc_major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev));
    CU(cuDeviceGetAttribute(&cc_minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev));
    char arch[32];
    snprintf(arch, sizeof arch, "sm_%d%d", cc_major, cc_minor);

    // ---- NVRTC: needed from here on, so its absence is a failure
    const char *nvrtc_defaults[3] = {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"};
    const char *nvrtc_one[1] = {nvrtc_lib};
    void *nv = nvrtc_lib && *nvrtc_lib ? open_first(nvrtc_one, 1, &nvrtc_lib_name, tried, sizeof tried)
                                       : open_first(nvrtc_defaults, 3, &nvrtc_lib_name, tried, sizeof tried);
    if (nv == NULL) fail("no NVRTC library (%s)", tried);
    load_nvrtc(nv);
    int nv_major = 0, nv_minor = 0;
    NVRTC(nvrtcVersion(&nv_major, &nv_minor));

    printf("launch_baseline: %s (%s), driver %d.%d (%s), NVRTC %d.%d (%s)%s\n", device_name, arch,
           driver_version / 1000, driver_version % 1000 / 10, cuda_lib_name, nv_major, nv_minor, nvrtc_lib_name,
           emulator ? " -- the CUDA emulator: kernels run on the CPU, the timings say nothing about a GPU" : "");

    CUcontext ctx;
    CU(cuDevicePrimaryCtxRetain(&ctx, dev));
    CU(cuCtxSetCurrent(ctx));
    CUstream stream;
    CU(cuStreamCreate(&stream, 0));  // CU_STREAM_DEFAULT, as CudaStream.create()

    // ---- the cosine kernel: the file's text with its headers pasted in, named after the file
    char *raw = read_file(cu_path);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", cu_path);
    char *slash = strrchr(dir, '/');
    const char *prog_name = strrchr(cu_path, '/') ? strrchr(cu_path, '/') + 1 : cu_path;
    if (slash) {
        *slash = '\0';
    } else {
        snprintf(dir, sizeof dir, ".");
    }
    Buf src = {0};
    expand(dir, raw, &src);
    free(raw);
    char *cubin = NULL, *log = NULL;
    int nrc = compile(src.s, prog_name, arch, &cubin, &log);
    if (nrc != 0) fail("nvrtcCompileProgram(%s, %s) failed: %s (%d)\n%s", prog_name, arch, nvrtc_name(nrc), nrc,
                       log ? log : "");
    CUmodule mod;
    CU(cuModuleLoadData(&mod, cubin));
    free(cubin);
    CUfunction cosine;
    CU(cuModuleGetFunction(&cosine, mod, "cosine_similarity_f32_kernel"));

    // x = (1), y = (2) in the first element of 256-byte buffers, as LaunchOverheadBench's setup
    CUdeviceptr x, y, out;
    CU(cuMemAlloc(&x, 256));
    CU(cuMemAlloc(&y, 256));
    CU(cuMemAlloc(&out, 256));
    float one = 1.0f, two = 2.0f;
    unsigned one_bits, two_bits;
    memcpy(&one_bits, &one, 4);
    memcpy(&two_bits, &two, 4);
    CU(cuMemsetD32(x, one_bits, 64));
    CU(cuMemsetD32(y, two_bits, 64));
    CU(cuMemsetD32(out, 0, 64));
    // cosine_similarity_f32_kernel(const float* a, const float* b, float* out, int rows, int group, int d, float eps,
    //                              int wpr)
    int rows = 1, group = 1, d = 1, wpr = 1;
    float eps = 1e-8f;
    void *params[8] = {&x, &y, &out, &rows, &group, &d, &eps, &wpr};
    CU(cuLaunchKernel(cosine, 1, 1, 1, 256, 1, 1, 0, stream, params, NULL));
    CU(cuStreamSynchronize(stream));
    float got = 0;
    CU(cuMemcpyDtoH(&got, out, sizeof got));
    float diff = got > 1.0f ? got - 1.0f : 1.0f - got;
    // the emulator told to run no kernel (RLSR_CUDA_EMULATOR_NULL_LAUNCH): its own cost of a launch, nothing computed
    const int null_launch = emulator && getenv("RLSR_CUDA_EMULATOR_NULL_LAUNCH") != NULL;
    if (null_launch) {
        printf("  not validated: RLSR_CUDA_EMULATOR_NULL_LAUNCH is set, the emulator runs no kernel\n");
    } else if (!(diff <= 1e-6f)) {
        fail("cosine of (1) and (2) should be 1, got %.9g", (double) got);
    } else {
        printf("  validated: cosine_similarity_f32_kernel(x=(1), y=(2)) = %.9g\n", (double) got);
    }

    // ---- the empty kernel from an in-memory source: the driver's floor with 0 parameters
    static const char empty_src[] = "extern \"C\" __global__ void rlsr_empty() {}\n";
    char empty_skip[1024] = "";
    CUmodule empty_mod = NULL;
    CUfunction empty = NULL;
    nrc = compile(empty_src, "rlsr_empty.cu", arch, &cubin, &log);
    if (nrc != 0) {
        if (!emulator) fail("nvrtcCompileProgram(rlsr_empty.cu, %s) failed: %s (%d)\n%s", arch, nvrtc_name(nrc), nrc,
                            log ? log : "");
        snprintf(empty_skip, sizeof empty_skip,
                 "the CUDA emulator compiles only the kernel files it was built from (nvrtcCompileProgram: %s)",
                 nvrtc_name(nrc));
    } else {
        CU(cuModuleLoadData(&empty_mod, cubin));
        free(cubin);
        CU(cuModuleGetFunction(&empty, empty_mod, "rlsr_empty"));
        CU(cuLaunchKernel(empty, 1, 1, 1, 256, 1, 1, 0, stream, NULL, NULL));
        CU(cuStreamSynchronize(stream));
    }
    free(log);

    // ---- timed bursts
    Stats s8 = measure(cosine, params, stream, warmup, reps, budget);
    Stats s0 = {0, 0, 0, 0, 0};
    if (empty) s0 = measure(empty, NULL, stream, warmup, reps, budget);

    printf("host time per cuLaunchKernel (grid 1, block 256, bursts of %d, stream synchronised between bursts):\n",
           BURST);
    print_stats("cosine_similarity_f32_kernel (8 params)", &s8);
    if (empty) {
        print_stats("rlsr_empty (0 params)", &s0);
    } else {
        printf("  %-44s skipped: %s\n", "rlsr_empty (0 params)", empty_skip);
    }

    printf("{\"bench\":\"launch_baseline\",\"key\":\"launch_baseline\",\"device\":");
    json_string(device_name);
    printf(",\"arch\":\"%s\",\"driver_version\":%d,\"nvrtc_version\":\"%d.%d\",\"cuda_lib\":", arch, driver_version,
           nv_major, nv_minor);
    json_string(cuda_lib_name);
    fputs(",\"nvrtc_lib\":", stdout);
    json_string(nvrtc_lib_name);
    printf(",\"emulator\":%s,\"validated\":%s,\"cos\":%.9g,\"burst\":%d,\"warmup_bursts\":%d,\"repetitions\":%d",
           emulator ? "true" : "false", null_launch ? "false" : "true", (double) got, BURST, warmup, s8.reps);
    json_stats("args8", "cosine_similarity_f32_kernel", 8, &s8, NULL);
    json_stats("args0", "rlsr_empty", 0, &s0, empty ? NULL : empty_skip);
    printf("}\n");
    fflush(stdout);

    CU(cuMemFree(x));
    CU(cuMemFree(y));
    CU(cuMemFree(out));
    CU(cuModuleUnload(mod));
    if (empty_mod) CU(cuModuleUnload(empty_mod));
    CU(cuStreamDestroy(stream));
    CU(cuDevicePrimaryCtxRelease(dev));
    free(src.s);
    return 0;
}
