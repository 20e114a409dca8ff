// NCCL on one rank: the emulator has one device, so a communicator has one rank and every collective is a copy
// (sum, product, max, min and average over one rank are the value itself). The work goes through the stream like a
// kernel: run now, or recorded into a capture.
#include <string.h>

#include <set>

#include "emu.h"

using namespace rlsr_emu;

namespace {

enum {
    ncclSuccess = 0,
    ncclUnhandledCudaError = 1,
    ncclSystemError = 2,
    ncclInternalError = 3,
    ncclInvalidArgument = 4,
    ncclInvalidUsage = 5,
    ncclRemoteError = 6,
    ncclInProgress = 7,
};

struct Comm {
    int rank = 0;
};

struct UniqueId {
    char internal[128];
};

std::set<Comm*> g_comms;
int g_group_depth;
std::string g_last_error;

int nccl_fail(int code, const std::string& why) {
    g_last_error = why;
    log_line(why);
    return code;
}

int type_bytes(int t) {
    switch (t) {
        case 0: case 1: return 1;           // int8, uint8
        case 2: case 3: case 7: return 4;   // int32, uint32, float32
        case 4: case 5: case 8: return 8;   // int64, uint64, float64
        case 6: case 9: return 2;           // float16, bfloat16
        default: return 0;
    }
}

int nccl_call(const std::function<int()>& fn) {
    std::lock_guard<std::recursive_mutex> lock(api_lock());
    try {
        return fn();
    } catch (const std::exception& e) {
        return nccl_fail(ncclInternalError, std::string("NCCL: ") + e.what());
    }
}

// recv = send on the one rank, on `stream`
int one_rank_copy(const char* fn, const void* send, void* recv, size_t count, int type, void* comm, void* stream) {
    Comm* c = static_cast<Comm*>(comm);
    if (comm == nullptr || g_comms.count(c) == 0) return nccl_fail(ncclInvalidArgument, std::string(fn) + ": not a live communicator");
    const int eb = type_bytes(type);
    if (eb == 0) return nccl_fail(ncclInvalidArgument, std::string(fn) + ": unknown ncclDataType_t " + std::to_string(type));
    const size_t bytes = count * (size_t) eb;
    if (bytes == 0) return ncclSuccess;
    if (check_device_range(fn, "sendbuff", (uint64_t) send, bytes) || check_device_range(fn, "recvbuff", (uint64_t) recv, bytes)) {
        return nccl_fail(ncclInvalidArgument, std::string(fn) + ": " + error_detail(CUDA_ERROR_INVALID_VALUE));
    }
    int rc = stream_submit(stream, fn, [send, recv, bytes] {
        if (send != recv) memmove(recv, send, bytes);
        return (int) CUDA_SUCCESS;
    });
    return rc == CUDA_SUCCESS ? ncclSuccess : nccl_fail(ncclUnhandledCudaError, std::string(fn) + ": " + error_detail(rc));
}

}  // namespace

RLSR_API const char* ncclGetErrorString(int result) {
    switch (result) {
        case ncclSuccess: return "no error";
        case ncclUnhandledCudaError: return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
        case ncclSystemError: return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
        case ncclInternalError: return "internal error - please report this issue to the NCCL developers";
        case ncclInvalidArgument: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
        case ncclInvalidUsage: return "invalid usage (run with NCCL_DEBUG=WARN for details)";
        case ncclRemoteError: return "remote process exited or there was a network error";
        case ncclInProgress: return "NCCL operation in progress";
        default: return "unknown result code";
    }
}

RLSR_API const char* ncclGetLastError(void* comm) {
    (void) comm;
    return g_last_error.c_str();
}

RLSR_API int ncclGetVersion(int* version) {
    if (version == nullptr) return ncclInvalidArgument;
    *version = 29900;  // 2.99.0: no real NCCL has it
    return ncclSuccess;
}

RLSR_API int ncclGetUniqueId(UniqueId* id) {
    if (id == nullptr) return ncclInvalidArgument;
    memset(id, 0, sizeof *id);
    memcpy(id->internal, "rlsr-cuda-emulator one-rank communicator", 41);
    return ncclSuccess;
}

RLSR_API int ncclCommInitRank(void** comm, int nranks, UniqueId id, int rank) {
    return nccl_call([&]() -> int {
        (void) id;
        if (comm == nullptr) return ncclInvalidArgument;
        if (nranks != 1 || rank != 0) {
            return nccl_fail(ncclInvalidArgument, "ncclCommInitRank(nranks=" + std::to_string(nranks) + ", rank=" +
                                                          std::to_string(rank) + "): the CUDA emulator has one device, so "
                                                                                 "communicators have one rank");
        }
        Comm* c = new Comm();
        g_comms.insert(c);
        *comm = c;
        return ncclSuccess;
    });
}

RLSR_API int ncclCommInitAll(void** comms, int ndev, const int* devlist) {
    return nccl_call([&]() -> int {
        if (comms == nullptr || ndev != 1 || (devlist != nullptr && devlist[0] != 0)) {
            return nccl_fail(ncclInvalidArgument, "ncclCommInitAll: the CUDA emulator has one device (ndev 1, device 0)");
        }
        Comm* c = new Comm();
        g_comms.insert(c);
        comms[0] = c;
        return ncclSuccess;
    });
}

RLSR_API int ncclCommDestroy(void* comm) {
    return nccl_call([&]() -> int {
        Comm* c = static_cast<Comm*>(comm);
        if (comm == nullptr || g_comms.count(c) == 0) return nccl_fail(ncclInvalidArgument, "ncclCommDestroy: not a live communicator");
        g_comms.erase(c);
        delete c;
        return ncclSuccess;
    });
}

RLSR_API int ncclCommCount(void* comm, int* count) {
    return nccl_call([&]() -> int {
        if (g_comms.count(static_cast<Comm*>(comm)) == 0 || count == nullptr) return ncclInvalidArgument;
        *count = 1;
        return ncclSuccess;
    });
}

RLSR_API int ncclCommUserRank(void* comm, int* rank) {
    return nccl_call([&]() -> int {
        if (g_comms.count(static_cast<Comm*>(comm)) == 0 || rank == nullptr) return ncclInvalidArgument;
        *rank = 0;
        return ncclSuccess;
    });
}

RLSR_API int ncclCommCuDevice(void* comm, int* device) {
    return nccl_call([&]() -> int {
        if (g_comms.count(static_cast<Comm*>(comm)) == 0 || device == nullptr) return ncclInvalidArgument;
        *device = 0;
        return ncclSuccess;
    });
}

RLSR_API int ncclAllReduce(const void* send, void* recv, size_t count, int type, int op, void* comm, void* stream) {
    return nccl_call([&]() -> int {
        if (op < 0 || op > 4) return nccl_fail(ncclInvalidArgument, "ncclAllReduce: unknown ncclRedOp_t " + std::to_string(op));
        return one_rank_copy("ncclAllReduce", send, recv, count, type, comm, stream);
    });
}

RLSR_API int ncclReduce(const void* send, void* recv, size_t count, int type, int op, int root, void* comm, void* stream) {
    return nccl_call([&]() -> int {
        if (op < 0 || op > 4 || root != 0) return nccl_fail(ncclInvalidArgument, "ncclReduce: bad op or root (one rank: root 0)");
        return one_rank_copy("ncclReduce", send, recv, count, type, comm, stream);
    });
}

RLSR_API int ncclBroadcast(const void* send, void* recv, size_t count, int type, int root, void* comm, void* stream) {
    return nccl_call([&]() -> int {
        if (root != 0) return nccl_fail(ncclInvalidArgument, "ncclBroadcast: root " + std::to_string(root) + " (one rank: root 0)");
        return one_rank_copy("ncclBroadcast", send, recv, count, type, comm, stream);
    });
}

RLSR_API int ncclBcast(void* buf, size_t count, int type, int root, void* comm, void* stream) {
    return nccl_call([&]() -> int {
        if (root != 0) return nccl_fail(ncclInvalidArgument, "ncclBcast: root " + std::to_string(root) + " (one rank: root 0)");
        return one_rank_copy("ncclBcast", buf, buf, count, type, comm, stream);
    });
}

RLSR_API int ncclAllGather(const void* send, void* recv, size_t count, int type, void* comm, void* stream) {
    return nccl_call([&] { return one_rank_copy("ncclAllGather", send, recv, count, type, comm, stream); });
}

RLSR_API int ncclReduceScatter(const void* send, void* recv, size_t count, int type, int op, void* comm, void* stream) {
    return nccl_call([&]() -> int {
        if (op < 0 || op > 4) return nccl_fail(ncclInvalidArgument, "ncclReduceScatter: unknown ncclRedOp_t");
        return one_rank_copy("ncclReduceScatter", send, recv, count, type, comm, stream);
    });
}

RLSR_API int ncclGroupStart() {
    return nccl_call([&]() -> int {
        ++g_group_depth;
        return ncclSuccess;
    });
}

RLSR_API int ncclGroupEnd() {
    return nccl_call([&]() -> int {
        if (g_group_depth == 0) return nccl_fail(ncclInvalidUsage, "ncclGroupEnd without ncclGroupStart");
        --g_group_depth;
        return ncclSuccess;
    });
}
