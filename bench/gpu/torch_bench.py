#!/usr/bin/env python3
"""The GPU check's PyTorch side: the same workloads as dev.rlsr.bench.gpu, timed the way a PyTorch user runs them.

  python3 bench/gpu/torch_bench.py --out torch.json [--budget 120]

Timing: triton.testing.do_bench median (CUDA events, L2 flushed before each run), else a CUDA-event median.
Variants per workload: eager, torch.compile (default mode) and, for the log-prob gather, TRL's row-wise
selective_log_softmax. Every measurement is guarded: a failure is recorded under "errors" and the next one runs.
The JSON is rewritten after every measurement, so a time-out still leaves what was measured. torch.compile runs
last and only while the --budget (seconds) allows, since each compilation costs seconds.

Workload keys match the Java side (ours.jsonl) and table.py:
  copy_1GiB, logprob_{fwd,bwd}_N{rows}_V{vocab}_bf16, cosine_N{n}_D{d}_{fp32,bf16}, gadv_P{p}_G{g}
"""
import argparse
import math
import sys
import time
import traceback

from results_json import ResultsFile  # bench/gpu, next to this script

T0 = time.time()

LOGPROB = [(16, 512, 151936), (16, 1024, 32000)]  # logits (B,T,V) bf16, rows N = B*T
COSINE = [(16384, 4096, "fp32"), (4096, 1024, "fp32"), (4096, 384, "bf16")]  # a, b (N,D)
GADV = [(4096, 16), (64, 8)]  # rewards (P,G) fp32
ADV_EPS = 1e-4  # TRL's GRPO epsilon


def log(msg):
    print(f"[torch {time.time() - T0:6.1f}s] {msg}", flush=True)


class Results(ResultsFile):
    def __init__(self, path):
        super().__init__(path, {"device": {}, "copy_GBps": None, "workloads": {}, "errors": {}, "skipped": []})

    def put(self, key, field, value):
        self.data["workloads"].setdefault(key, {})[field] = value
        self.save()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--budget", type=float, default=150.0, help="seconds; torch.compile steps stop when spent")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny shapes, on the CPU when there is no GPU: checks this script, measures nothing useful")
    args = ap.parse_args()
    global LOGPROB, COSINE, GADV
    if args.smoke:
        LOGPROB = [(2, 8, 1000), (2, 16, 320)]
        COSINE = [(64, 256, "fp32"), (32, 128, "fp32"), (32, 96, "bf16")]
        GADV = [(16, 16), (4, 8)]
    res = Results(args.out)

    import torch
    import torch.nn.functional as F

    cuda = torch.cuda.is_available()
    if not cuda and not args.smoke:
        log("no CUDA device visible to PyTorch: nothing to measure")
        res.data["errors"]["device"] = "torch.cuda.is_available() is False"
        res.save()
        return 0
    if cuda:
        dev = torch.device("cuda")
        props = torch.cuda.get_device_properties(0)
        res.data["device"] = {"name": props.name, "sms": props.multi_processor_count,
                              "mem_gib": round(props.total_memory / 2**30, 1), "torch": torch.__version__,
                              "cuda": torch.version.cuda}
        log(f"{props.name}, {props.multi_processor_count} SMs, torch {torch.__version__}, CUDA {torch.version.cuda}")
    else:
        dev = torch.device("cpu")
        res.data["device"] = {"name": "cpu (smoke test)", "torch": torch.__version__}
        log(f"smoke test on the CPU, torch {torch.__version__}")
    res.save()
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    try:
        from triton.testing import do_bench as _do_bench
    except Exception as e:  # noqa: BLE001 - fall back to plain events
        log(f"triton.testing unavailable ({e}); timing with CUDA events")
        _do_bench = None

    def timeit(fn):
        """median milliseconds of fn() on the current stream, warm-up excluded"""
        if not cuda:
            fn()
            times = []
            for _ in range(5):
                t = time.perf_counter(); fn(); times.append((time.perf_counter() - t) * 1e3)
            return sorted(times)[2]
        if _do_bench is not None:
            return float(_do_bench(fn, warmup=25, rep=100, return_mode="median"))
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
        flush = torch.empty(256 * 2**20, dtype=torch.int8, device=dev)
        times = []
        for _ in range(30):
            flush.zero_()  # same L2 flush as do_bench, outside the timed region
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record(); fn(); e.record(); e.synchronize()
            times.append(s.elapsed_time(e))
        times.sort()
        return times[len(times) // 2]

    def extra_peak_gib(fn):
        if not cuda:
            fn()
            return None
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return round((torch.cuda.max_memory_allocated() - base) / 2**30, 3)

    def guarded(what, f):
        try:
            f()
        except Exception as e:  # noqa: BLE001 - one failure must not stop the others
            log(f"FAILED {what}: {type(e).__name__}: {e}")
            traceback.print_exc(limit=3)
            res.error(what, e)
        finally:
            if cuda:
                torch.cuda.empty_cache()

    gen = torch.Generator(device=dev)
    gen.manual_seed(1234)

    # ---------------- device copy bandwidth: 1 GiB D2D, bytes read + written -----------------
    def copy_bw():
        n = 2**30 if cuda else 2**24
        src = torch.randint(0, 255, (n,), dtype=torch.uint8, device=dev, generator=gen)
        dst = torch.empty_like(src)
        ms = timeit(lambda: dst.copy_(src))
        gbps = 2 * n / (ms * 1e-3) / 1e9
        res.put("copy_1GiB", "eager_ms", ms)
        res.data["copy_GBps"] = gbps
        res.save()
        log(f"copy 1 GiB D2D: {ms:.3f} ms, {gbps:.0f} GB/s (read + write)")
    guarded("copy_1GiB", copy_bw)

    # ---------------- the functions under test -----------------
    def lp_eager(logits, targets):
        # what most code writes: fp32 log_softmax over the vocabulary, then gather
        return torch.log_softmax(logits.float(), dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)

    def lp_trl(logits, index):
        # trl.trainer.utils.selective_log_softmax, bf16 branch: a loop over the batch bounds peak memory
        per_token = []
        for row_logits, row_labels in zip(logits, index):
            row_logps = F.log_softmax(row_logits, dim=-1)
            per_token.append(row_logps.gather(dim=-1, index=row_labels.unsqueeze(-1)).squeeze(-1))
        return torch.stack(per_token)

    def lp_bwd_eager(logits, targets, g):
        # d logp[t] / d logits = g * (onehot(t) - softmax(logits)), fp32 math, bf16 out
        p = torch.softmax(logits.float(), dim=-1)
        p.mul_(-g.unsqueeze(-1))
        p.scatter_add_(-1, targets.unsqueeze(-1), g.unsqueeze(-1))
        return p.to(torch.bfloat16)

    def lp_bwd_pure(logits, targets, g):  # the same without in-place ops, for torch.compile
        p = torch.softmax(logits.float(), dim=-1)
        onehot = torch.nn.functional.one_hot(targets, logits.shape[-1]).to(p.dtype)
        return (g.unsqueeze(-1) * (onehot - p)).to(torch.bfloat16)

    def cos_eager(a, b):
        return F.cosine_similarity(a, b, dim=-1)

    def gadv_eager(r):
        return (r - r.mean(dim=1, keepdim=True)) / (r.std(dim=1, keepdim=True) + ADV_EPS)

    def lp_key(kind, b, t, v):
        return f"logprob_{kind}_N{b * t}_V{v}_bf16"

    def lp_inputs(b, t, v):
        logits = (torch.randn((b, t, v), dtype=torch.float32, device=dev, generator=gen) * 2).to(torch.bfloat16)
        targets = torch.randint(0, v, (b, t), device=dev, generator=gen)
        return logits, targets

    def cos_inputs(n, d, dt):
        dtype = torch.float32 if dt == "fp32" else torch.bfloat16
        a = torch.randn((n, d), device=dev, generator=gen).to(dtype)
        b = torch.randn((n, d), device=dev, generator=gen).to(dtype)
        return a, b

    def gadv_inputs(p, g):
        return torch.rand((p, g), device=dev, generator=gen) * 2 - 1

    # ---------------- eager (and TRL) first: cheap, no compilation -----------------
    for (b, t, v) in LOGPROB:
        def fwd(b=b, t=t, v=v):
            key = lp_key("fwd", b, t, v)
            logits, targets = lp_inputs(b, t, v)
            res.put(key, "eager_extra_gib", extra_peak_gib(lambda: lp_eager(logits, targets)))
            ms = timeit(lambda: lp_eager(logits, targets)); res.put(key, "eager_ms", ms)
            log(f"{key} eager {ms:.3f} ms")
            res.put(key, "trl_extra_gib", extra_peak_gib(lambda: lp_trl(logits, targets)))
            ms = timeit(lambda: lp_trl(logits, targets)); res.put(key, "trl_ms", ms)
            log(f"{key} TRL selective_log_softmax {ms:.3f} ms")
        guarded(lp_key("fwd", b, t, v) + " eager", fwd)

        def bwd(b=b, t=t, v=v):
            key = lp_key("bwd", b, t, v)
            logits, targets = lp_inputs(b, t, v)
            g = torch.randn((b, t), device=dev, generator=gen)
            ms = timeit(lambda: lp_bwd_eager(logits, targets, g)); res.put(key, "eager_ms", ms)
            log(f"{key} eager {ms:.3f} ms")
            # TRL's backward is autograd through the row loop (the graph kept, backward replayed)
            leaf = logits.detach().requires_grad_(True)
            out = lp_trl(leaf, targets)
            ms = timeit(lambda: torch.autograd.grad(out, leaf, g, retain_graph=True))
            res.put(key, "trl_ms", ms)
            log(f"{key} TRL autograd backward {ms:.3f} ms")
            del out, leaf
        guarded(lp_key("bwd", b, t, v) + " eager", bwd)

    for (n, d, dt) in COSINE:
        def cos(n=n, d=d, dt=dt):
            key = f"cosine_N{n}_D{d}_{dt}"
            a, b_ = cos_inputs(n, d, dt)
            ms = timeit(lambda: cos_eager(a, b_)); res.put(key, "eager_ms", ms)
            log(f"{key} eager {ms:.4f} ms")
        guarded(f"cosine_N{n}_D{d}_{dt} eager", cos)

    for (p, g) in GADV:
        def adv(p=p, g=g):
            key = f"gadv_P{p}_G{g}"
            r = gadv_inputs(p, g)
            ms = timeit(lambda: gadv_eager(r)); res.put(key, "eager_ms", ms)
            log(f"{key} eager {ms:.4f} ms")
        guarded(f"gadv_P{p}_G{g} eager", adv)

    # ---------------- torch.compile, most important first, while the budget lasts -----------------
    if args.no_compile:
        log("torch.compile skipped (--no-compile)")
        res.data["skipped"].append("torch.compile: --no-compile")
        res.save()
        return 0

    def compiled(key, fn, make_inputs, check=None):
        remaining = args.budget - (time.time() - T0)
        if remaining < 25:
            log(f"{key} torch.compile skipped: {remaining:.0f} s of budget left")
            res.data["skipped"].append(f"{key} torch.compile (budget)")
            res.save()
            return

        def run():
            torch._dynamo.reset()  # a fresh graph per workload keeps recompilation limits out of the way
            cf = torch.compile(fn)
            inputs = make_inputs()
            t = time.time()
            out = cf(*inputs)
            sync()
            compile_s = time.time() - t
            if check is not None:
                ref = check(*inputs)
                res.put(key, "compile_max_abs_err_vs_eager", float((out.float() - ref.float()).abs().max()))
                del ref
            del out
            ms = timeit(lambda: cf(*inputs))
            res.put(key, "compile_ms", ms)
            res.put(key, "compile_s", round(compile_s, 1))
            log(f"{key} torch.compile {ms:.4f} ms (compiled in {compile_s:.1f} s)")
        guarded(key + " compile", run)

    b, t, v = LOGPROB[0]
    compiled(lp_key("fwd", b, t, v), lp_eager, lambda: lp_inputs(b, t, v), lp_eager)
    n, d, dt = COSINE[0]
    compiled(f"cosine_N{n}_D{d}_{dt}", cos_eager, lambda: cos_inputs(n, d, dt))
    p, g = GADV[0]
    compiled(f"gadv_P{p}_G{g}", gadv_eager, lambda: (gadv_inputs(p, g),))
    b, t, v = LOGPROB[1]
    compiled(lp_key("fwd", b, t, v), lp_eager, lambda: lp_inputs(b, t, v), lp_eager)
    for (b, t, v) in LOGPROB:
        compiled(lp_key("bwd", b, t, v), lp_bwd_pure,
                 lambda b=b, t=t, v=v: (*lp_inputs(b, t, v), torch.randn((b, t), device=dev, generator=gen)))
    for (n, d, dt) in COSINE[1:]:
        compiled(f"cosine_N{n}_D{d}_{dt}", cos_eager, lambda n=n, d=d, dt=dt: cos_inputs(n, d, dt))
    for (p, g) in GADV[1:]:
        compiled(f"gadv_P{p}_G{g}", gadv_eager, lambda p=p, g=g: (gadv_inputs(p, g),))
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
