// NVRTC without a compiler: the kernels were compiled into this library by build.sh. "Compiling" a program checks
// that its text is exactly what CudaKernels.source() makes of the emulator's own copy of that file (includes pasted
// in), so a kernel edited after the emulator was built fails loudly instead of running the old code. The "cubin" is a
// small image that starts with the ELF magic (KernelCache keeps nothing else) and names the file and a hash of its
// text; cuModuleLoadData maps it back to the file's kernels.
#include <dlfcn.h>
#include <libgen.h>

#include <string.h>

#include <set>

#include "emu.h"

using namespace rlsr_emu;

namespace {

enum {
    NVRTC_SUCCESS = 0,
    NVRTC_ERROR_OUT_OF_MEMORY = 1,
    NVRTC_ERROR_PROGRAM_CREATION_FAILURE = 2,
    NVRTC_ERROR_INVALID_INPUT = 3,
    NVRTC_ERROR_INVALID_PROGRAM = 4,
    NVRTC_ERROR_INVALID_OPTION = 5,
    NVRTC_ERROR_COMPILATION = 6,
    NVRTC_ERROR_INTERNAL_ERROR = 11,
};

const char* const kNames[] = {
        "NVRTC_SUCCESS",
        "NVRTC_ERROR_OUT_OF_MEMORY",
        "NVRTC_ERROR_PROGRAM_CREATION_FAILURE",
        "NVRTC_ERROR_INVALID_INPUT",
        "NVRTC_ERROR_INVALID_PROGRAM",
        "NVRTC_ERROR_INVALID_OPTION",
        "NVRTC_ERROR_COMPILATION",
        "NVRTC_ERROR_BUILTIN_OPERATION_FAILURE",
        "NVRTC_ERROR_NO_NAME_EXPRESSIONS_AFTER_COMPILATION",
        "NVRTC_ERROR_NO_LOWERED_NAMES_BEFORE_COMPILATION",
        "NVRTC_ERROR_NAME_EXPRESSION_NOT_VALID",
        "NVRTC_ERROR_INTERNAL_ERROR",
};

struct Program {
    std::string source;
    std::string name;
    int num_headers = 0;
    bool compiled = false;
    std::string log;
    std::string image;
};

std::set<Program*> g_programs;

Program* program_of(void* h) {
    Program* p = static_cast<Program*>(h);
    return h != nullptr && g_programs.count(p) ? p : nullptr;
}

std::string library_dir() {
    Dl_info info;
    if (dladdr((void*) &library_dir, &info) && info.dli_fname) {
        std::string path = info.dli_fname;
        size_t slash = path.rfind('/');
        return slash == std::string::npos ? "." : path.substr(0, slash);
    }
    return "DIR";
}

std::string rebuild_hint() {
    return "Rebuild the emulator: native/emulator/build.sh " + library_dir() +
           "   (./mvnw verify rebuilds native/target/emulator)";
}

std::string line_of(const std::string& s, size_t line) {
    size_t pos = 0;
    for (size_t i = 1; i < line && pos != std::string::npos; ++i) {
        pos = s.find('\n', pos);
        if (pos != std::string::npos) ++pos;
    }
    if (pos == std::string::npos || pos > s.size()) return "<end of text>";
    size_t end = s.find('\n', pos);
    std::string l = s.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    return l.size() > 160 ? l.substr(0, 160) + "..." : l;
}

int compile(Program* p) {
    std::string file = p->name;
    const size_t slash = file.rfind('/');
    if (slash != std::string::npos) file = file.substr(slash + 1);
    std::string expected, err;
    if (p->num_headers > 0) {
        p->log = p->name + ": the emulator takes self-contained programs (headers pasted into the text, as "
                           "CudaKernels.source does), not nvrtcCreateProgram headers\n";
        return NVRTC_ERROR_COMPILATION;
    }
    if (!expanded_source(file, expected, err)) {
        std::string known;
        for (const std::string& f : registered_files()) known += " " + f;
        p->log = p->name + ": the CUDA emulator cannot compile arbitrary CUDA; it runs the kernel files it was built "
                           "from, and '" + file + "' is not one of them" +
                 (err == "unknown file" ? "" : " (" + err + ")") + ". Built from:" + known +
                 ".\nA kernel file added since the build? " + rebuild_hint() + "\n";
        return NVRTC_ERROR_COMPILATION;
    }
    if (expected != p->source) {
        size_t i = 0;
        const size_t n = std::min(expected.size(), p->source.size());
        while (i < n && expected[i] == p->source[i]) ++i;
        size_t line = 1;
        for (size_t j = 0; j < i; ++j) line += p->source[j] == '\n';
        p->log = p->name + ": the program text differs from the emulator's copy of " + file + " (first at line " +
                 std::to_string(line) + " of the program)\n  program : " + line_of(p->source, line) +
                 "\n  emulator: " + line_of(expected, line) + "\nThe emulator is stale. " + rebuild_hint() + "\n";
        return NVRTC_ERROR_COMPILATION;
    }
    std::string img = "\177ELF\nRLSR-CUDA-EMULATOR-IMAGE\nfile=" + file + "\nsource-fnv1a=" + hex(fnv1a(expected)) +
                      "\n# a stand-in for a cubin: cuModuleLoadData of the RLSR CUDA emulator maps it to the kernels "
                      "compiled into the library\n";
    p->image = img;
    p->image.push_back('\0');
    p->compiled = true;
    p->log.clear();
    return NVRTC_SUCCESS;
}

int guarded(const char* fn, const std::function<int()>& body) {
    std::lock_guard<std::recursive_mutex> lock(api_lock());
    try {
        return body();
    } catch (const std::bad_alloc&) {
        return NVRTC_ERROR_OUT_OF_MEMORY;
    } catch (const std::exception& e) {
        log_line(std::string(fn) + ": internal error: " + e.what());
        return NVRTC_ERROR_INTERNAL_ERROR;
    }
}

}  // namespace

RLSR_API const char* nvrtcGetErrorString(int result) {
    if (result >= 0 && result < (int) (sizeof kNames / sizeof kNames[0])) return kNames[result];
    return "NVRTC_ERROR unknown";
}

// 99.0: no real NVRTC has it, so the on-disk kernel cache (keyed by the version) never mixes emulator images with
// real cubins.
RLSR_API int nvrtcVersion(int* major, int* minor) {
    if (major == nullptr || minor == nullptr) return NVRTC_ERROR_INVALID_INPUT;
    *major = 99;
    *minor = 0;
    return NVRTC_SUCCESS;
}

RLSR_API int nvrtcCreateProgram(void** prog, const char* src, const char* name, int num_headers,
                                const char* const* headers, const char* const* include_names) {
    return guarded("nvrtcCreateProgram", [&]() -> int {
        (void) headers;
        (void) include_names;
        if (prog == nullptr || src == nullptr || num_headers < 0) return NVRTC_ERROR_INVALID_INPUT;
        Program* p = new Program();
        p->source = src;
        p->name = name ? name : "default_program";
        p->num_headers = num_headers;
        g_programs.insert(p);
        *prog = p;
        return NVRTC_SUCCESS;
    });
}

RLSR_API int nvrtcDestroyProgram(void** prog) {
    return guarded("nvrtcDestroyProgram", [&]() -> int {
        if (prog == nullptr) return NVRTC_ERROR_INVALID_INPUT;
        Program* p = program_of(*prog);
        if (p == nullptr) return NVRTC_ERROR_INVALID_PROGRAM;
        g_programs.erase(p);
        delete p;
        *prog = nullptr;
        return NVRTC_SUCCESS;
    });
}

RLSR_API int nvrtcCompileProgram(void* prog, int num_options, const char* const* options) {
    return guarded("nvrtcCompileProgram", [&]() -> int {
        Program* p = program_of(prog);
        if (p == nullptr) return NVRTC_ERROR_INVALID_PROGRAM;
        if (num_options < 0 || (num_options > 0 && options == nullptr)) return NVRTC_ERROR_INVALID_INPUT;
        // options (architecture, -I, -lineinfo, ...) change nothing: the code was compiled by build.sh
        return compile(p);
    });
}

RLSR_API int nvrtcGetProgramLogSize(void* prog, size_t* size) {
    return guarded("nvrtcGetProgramLogSize", [&]() -> int {
        Program* p = program_of(prog);
        if (p == nullptr) return NVRTC_ERROR_INVALID_PROGRAM;
        if (size == nullptr) return NVRTC_ERROR_INVALID_INPUT;
        *size = p->log.size() + 1;
        return NVRTC_SUCCESS;
    });
}

RLSR_API int nvrtcGetProgramLog(void* prog, char* log) {
    return guarded("nvrtcGetProgramLog", [&]() -> int {
        Program* p = program_of(prog);
        if (p == nullptr) return NVRTC_ERROR_INVALID_PROGRAM;
        if (log == nullptr) return NVRTC_ERROR_INVALID_INPUT;
        memcpy(log, p->log.c_str(), p->log.size() + 1);
        return NVRTC_SUCCESS;
    });
}

static int image_size(void* prog, size_t* size) {
    return guarded("nvrtcGetCUBINSize", [&]() -> int {
        Program* p = program_of(prog);
        if (p == nullptr) return NVRTC_ERROR_INVALID_PROGRAM;
        if (size == nullptr) return NVRTC_ERROR_INVALID_INPUT;
        *size = p->compiled ? p->image.size() : 0;
        return NVRTC_SUCCESS;
    });
}

static int image(void* prog, char* out) {
    return guarded("nvrtcGetCUBIN", [&]() -> int {
        Program* p = program_of(prog);
        if (p == nullptr) return NVRTC_ERROR_INVALID_PROGRAM;
        if (out == nullptr || !p->compiled) return NVRTC_ERROR_INVALID_INPUT;
        memcpy(out, p->image.data(), p->image.size());
        return NVRTC_SUCCESS;
    });
}

RLSR_API int nvrtcGetCUBINSize(void* prog, size_t* size) { return image_size(prog, size); }
RLSR_API int nvrtcGetCUBIN(void* prog, char* cubin) { return image(prog, cubin); }
// There is no PTX: the "PTX" is the same image (cuModuleLoadData accepts it).
RLSR_API int nvrtcGetPTXSize(void* prog, size_t* size) { return image_size(prog, size); }
RLSR_API int nvrtcGetPTX(void* prog, char* ptx) { return image(prog, ptx); }
