package dev.rlsr.bindings;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** NCCL on one GPU: a one-rank communicator; sum over one rank and broadcast from it are exact copies. */
@Tag("gpu")
class NcclGpuTest {
    private static CudaContext ctx;

    @BeforeAll
    static void open() {
        GpuTestSupport.requireGpu();
        GpuTestSupport.requireThat(Nccl.isAvailable(), () -> "libnccl.so.2 not found");
        ctx = CudaContext.open(0);
        System.out.println("NCCL version " + Nccl.version());
    }

    @AfterAll
    static void close() {
        if (ctx != null) {
            ctx.close();
        }
    }

    @BeforeEach
    void current() {
        ctx.makeCurrent();
    }

    @Test
    void commInitAllAllReduceAndBroadcastOnOneGpu() {
        long[] comms = Nccl.commInitAll(new int[] {0});
        assertEquals(1, comms.length);
        assertTrue(comms[0] != 0);
        int n = 1000;
        float[] x = GpuTestSupport.random(606, n);
        try (CudaStream s = CudaStream.create(); DeviceBuffer send = DeviceBuffer.of(x);
                DeviceBuffer recv = DeviceBuffer.alloc(4L * n); DeviceBuffer bc = DeviceBuffer.alloc(4L * n)) {
            recv.fill(Float.NaN);
            bc.fill(Float.NaN);
            Nccl.groupStart();
            Nccl.allReduce(send.address(), recv.address(), n, Nccl.ncclFloat32, Nccl.ncclSum, comms[0], s.handle());
            Nccl.groupEnd();
            Nccl.broadcast(send.address(), bc.address(), n, Nccl.ncclFloat32, 0, comms[0], s.handle());
            s.synchronize();
            assertArrayEquals(x, recv.toFloatArray());
            assertArrayEquals(x, bc.toFloatArray());

            short[] bits = GpuTestSupport.toBf16(x);
            try (DeviceBuffer h = DeviceBuffer.of(bits)) {
                Nccl.allReduce(h.address(), h.address(), n, Nccl.ncclBfloat16, Nccl.ncclSum, comms[0], s.handle());
                s.synchronize();
                assertArrayEquals(bits, h.toShortArray(), "in-place bf16 sum over one rank");
            }
        } finally {
            Nccl.commDestroy(comms[0]);
        }
    }

    @Test
    void uniqueIdAndCommInitRankWithOneRank() {
        byte[] id = Nccl.getUniqueId();
        assertEquals(Nccl.UNIQUE_ID_BYTES, id.length);
        long comm = Nccl.commInitRank(1, id, 0);
        try (CudaStream s = CudaStream.create(); DeviceBuffer buf = DeviceBuffer.of(new float[] {1f, 2f, 3f})) {
            Nccl.allReduce(buf.address(), buf.address(), 3, Nccl.ncclFloat32, Nccl.ncclMax, comm, s.handle());
            s.synchronize();
            assertArrayEquals(new float[] {1f, 2f, 3f}, buf.toFloatArray());
        } finally {
            Nccl.commDestroy(comm);
        }
        assertTrue(!Nccl.getErrorString(4).isBlank());
    }
}
