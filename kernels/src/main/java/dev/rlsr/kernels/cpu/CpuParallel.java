package dev.rlsr.kernels.cpu;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The CPU backend's worker pool: {@code rlsr.threads} threads (default: available processors), the caller being
 * one of them. Work is handed out as chunk indices from a shared counter, so uneven chunks (causal attention
 * rows) balance themselves. Nested calls from a worker run inline instead of deadlocking the pool.
 */
public final class CpuParallel {
    /** Threads that run a parallel loop, the caller included: {@code -Drlsr.threads=N}, default the available processors. */
    public static final int THREADS = Math.max(1, Integer.getInteger("rlsr.threads",
            Runtime.getRuntime().availableProcessors()));

    private static final ForkJoinPool POOL = THREADS > 1 ? new ForkJoinPool(THREADS - 1) : null;

    /**
     * Elements of work below which a range is not worth a task: handing work to a parked worker and joining it costs
     * ~10-50 us, more than ~32K element operations of a row-wise op (an RMSNorm of 64 rows of 128 during decoding
     * took 65 us split in four, a few us inline).
     */
    public static final int MIN_TASK_WORK = 1 << 15;

    private CpuParallel() {}

    /**
     * Items per range for {@link #forRange} so that a range holds at least {@link #MIN_TASK_WORK} elements of work.
     *
     * @param workPerItem elements one item touches (e.g. a row's width)
     * @param minGrain    the smallest grain the caller wants anyway
     * @return the grain
     */
    public static int grain(int workPerItem, int minGrain) {
        return Math.max(minGrain, MIN_TASK_WORK / Math.max(1, workPerItem));
    }

    /** The body of {@link #forEach}: one item. */
    @FunctionalInterface
    public interface IndexBody {
        /**
         * Processes one item.
         *
         * @param i the item's index
         */
        void run(int i);
    }

    /** The body of {@link #forRange}: one contiguous range of items. */
    @FunctionalInterface
    public interface RangeBody {
        /**
         * Processes the items of {@code [lo, hi)}.
         *
         * @param lo first item
         * @param hi one past the last item
         */
        void run(int lo, int hi);
    }

    /**
     * Runs {@code body(i)} for i in [0, n), in parallel; returns when all finished. The first exception thrown by a
     * body is rethrown here.
     *
     * @param n    items (nothing happens for n &lt;= 0)
     * @param body the work of one item; must be safe to run concurrently for different items
     */
    public static void forEach(int n, IndexBody body) {
        if (n <= 0) {
            return;
        }
        if (n == 1 || POOL == null || ForkJoinTask.inForkJoinPool()) {
            for (int i = 0; i < n; i++) {
                body.run(i);
            }
            return;
        }
        AtomicInteger next = new AtomicInteger();
        Runnable worker = () -> {
            for (int i; (i = next.getAndIncrement()) < n; ) {
                body.run(i);
            }
        };
        int helpers = Math.min(THREADS - 1, n - 1);
        ForkJoinTask<?>[] tasks = new ForkJoinTask<?>[helpers];
        for (int t = 0; t < helpers; t++) {
            tasks[t] = POOL.submit(worker);
        }
        Throwable failure = null;
        try {
            worker.run();
        } catch (Throwable e) {
            failure = e;
        }
        for (ForkJoinTask<?> t : tasks) {
            try {
                t.join();
            } catch (Throwable e) {
                if (failure == null) {
                    failure = e;
                }
            }
        }
        if (failure instanceof RuntimeException re) {
            throw re;
        }
        if (failure instanceof Error er) {
            throw er;
        }
    }

    /**
     * Splits [0, n) into contiguous ranges of at least {@code grain} items (about four per thread) and runs
     * {@code body(lo, hi)} on each in parallel.
     *
     * @param n     items (nothing happens for n &lt;= 0)
     * @param grain the smallest range worth a task
     * @param body  the work of one range; must be safe to run concurrently for disjoint ranges
     */
    public static void forRange(int n, int grain, RangeBody body) {
        if (n <= 0) {
            return;
        }
        int chunks = (int) Math.min((long) THREADS * 4, Math.max(1, n / Math.max(1, grain)));
        if (chunks <= 1) {
            body.run(0, n);
            return;
        }
        int per = (n + chunks - 1) / chunks;
        int count = (n + per - 1) / per;
        forEach(count, c -> body.run(c * per, Math.min(n, (c + 1) * per)));
    }
}
