// Shared plumbing: the API lock, error details and logging, the kernel registry, the embedded kernel sources and the
// include expansion that CudaKernels.source() does in Java (so NVRTC can compare program texts).
#include <ctype.h>
#include <stdlib.h>

#include <map>
#include <new>
#include <set>

#include "emu.h"

namespace rlsr_emu {

// The generated sources.cpp: every .cu/.cuh file the emulator was built from, as bytes.
extern const SourceText kSources[];
extern const int kSourceCount;

std::recursive_mutex& api_lock() {
    static std::recursive_mutex m;
    return m;
}

void log_line(const std::string& msg) {
    static const bool quiet = [] {
        const char* e = getenv("RLSR_CUDA_EMULATOR_LOG");
        return e != nullptr && (e[0] == '0' || e[0] == 'n' || e[0] == 'N');
    }();
    if (!quiet) fprintf(stderr, "rlsr-cuda-emulator: %s\n", msg.c_str());
}

namespace {
std::map<int, std::string>& details() {
    static std::map<int, std::string> m;
    return m;
}
thread_local bool t_detail_set;
}  // namespace

int fail(int code, const std::string& detail) {
    details()[code] = detail;
    t_detail_set = true;
    log_line(detail);
    return code;
}

int fail_quiet(int code, const std::string& detail) {
    details()[code] = detail;
    t_detail_set = true;
    return code;
}

const char* error_detail(int code) {
    auto it = details().find(code);
    return it == details().end() ? "" : it->second.c_str();
}

void clear_error_detail(int code) { details().erase(code); }

int api_call(const char* name, const std::function<int()>& fn) {
    std::lock_guard<std::recursive_mutex> lock(api_lock());
    t_detail_set = false;
    int rc;
    try {
        rc = fn();
    } catch (const std::bad_alloc&) {
        rc = fail(CUDA_ERROR_OUT_OF_MEMORY, std::string(name) + ": host memory exhausted");
    } catch (const std::exception& e) {
        rc = fail(CUDA_ERROR_UNKNOWN, std::string(name) + ": internal error: " + e.what());
    }
    // an error without a detail of its own must not show the detail of an older, unrelated one
    if (rc != 0 && !t_detail_set) clear_error_detail(rc);
    return rc;
}

// ---- registry ---------------------------------------------------------------------------------------------------------
namespace {
FileDesc* g_files;  // constant-initialised: safe to use from other translation units' static initialisers
}

void register_file(FileDesc* file) {
    file->next = g_files;
    g_files = file;
}

const FileDesc* find_file(const std::string& file) {
    for (FileDesc* f = g_files; f; f = f->next)
        if (file == f->file) return f;
    return nullptr;
}

std::vector<std::string> registered_files() {
    std::set<std::string> names;
    for (FileDesc* f = g_files; f; f = f->next) names.insert(f->file);
    return std::vector<std::string>(names.begin(), names.end());
}

const SourceText* find_source(const std::string& name) {
    for (int i = 0; i < kSourceCount; ++i)
        if (name == kSources[i].name) return &kSources[i];
    return nullptr;
}

uint64_t fnv1a(const std::string& s) {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ull;
    }
    return h;
}

namespace {

// A line that CudaKernels' INCLUDE pattern matches: ^[ \t]*#[ \t]*include[ \t]*"([A-Za-z0-9_]+\.cuh)"[^\n]*$
bool include_line(const std::string& line, std::string& header) {
    size_t i = 0;
    auto blanks = [&] {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    };
    blanks();
    if (i >= line.size() || line[i] != '#') return false;
    ++i;
    blanks();
    if (line.compare(i, 7, "include") != 0) return false;
    i += 7;
    blanks();
    if (i >= line.size() || line[i] != '"') return false;
    ++i;
    size_t start = i;
    while (i < line.size() && (isalnum((unsigned char) line[i]) || line[i] == '_')) ++i;
    if (i == start || line.compare(i, 5, ".cuh\"") != 0) return false;
    header = line.substr(start, i - start) + ".cuh";
    return true;
}

bool expand(const std::string& text, std::set<std::string>& seen, std::string& out, std::string& error) {
    size_t pos = 0;
    while (pos <= text.size()) {
        size_t nl = text.find('\n', pos);
        const bool last = nl == std::string::npos;
        std::string line = text.substr(pos, last ? std::string::npos : nl - pos);
        std::string header;
        if (include_line(line, header)) {
            std::string body;
            if (seen.insert(header).second) {
                const SourceText* h = find_source(header);
                if (h == nullptr) {
                    error = "#include \"" + header + "\": the emulator was not built with that header";
                    return false;
                }
                if (!expand(std::string(h->begin, h->end), seen, body, error)) return false;
            }
            out += "// ---- begin " + header + "\n" + body + "\n// ---- end " + header;
        } else {
            out += line;
        }
        if (last) break;
        out += '\n';
        pos = nl + 1;
    }
    return true;
}

}  // namespace

bool expanded_source(const std::string& file, std::string& out, std::string& error) {
    const SourceText* s = find_source(file);
    if (s == nullptr || find_file(file) == nullptr) {
        error = "unknown file";
        return false;
    }
    std::set<std::string> seen;
    out.clear();
    return expand(std::string(s->begin, s->end), seen, out, error);
}

}  // namespace rlsr_emu

// Lets Java (CudaDriver.isEmulator) and people tell the emulator from a real driver.
RLSR_API const char* rlsr_cuda_emulator_info() {
    static std::string info = [] {
        std::string s = "RLSR CUDA emulator (SIMT shim on the CPU); kernel files:";
        for (const std::string& f : rlsr_emu::registered_files()) s += " " + f;
        return s;
    }();
    return info.c_str();
}
