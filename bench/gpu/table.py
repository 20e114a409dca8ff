#!/usr/bin/env python3
"""Merges the GPU check's results into one short table (stdout and --out as Markdown).

  python3 bench/gpu/table.py --ours ours.jsonl --torch-e2e torch_e2e.json [--jmh jmh.json --torch torch.json]
                             [--junit junit.log] --out table.md [--status "..."]

ours.jsonl:     one JSON object per line (dev.rlsr.bench.gpu.GpuResults): the end-to-end benchmarks
                (TrainStepGpuBench: keys train_*; GenerationGpuBench: gen_* with part a/b, rlsr_step_*), the
                JMH kernel benchmarks' setup lines ({"key", "kernel_ms", "bytes", "GBps", ...}), and the C launch
                baseline's line (bench/gpu/launch_baseline.c, key launch_baseline: args8 / args0 in ns per launch).
torch_e2e.json: bench/gpu/torch_e2e.py's output (SFT steps, HF generate, the TRL-style RLSR step).
jmh.json:       JMH's -rf json output; the Java call time (launch + stream synchronize) is primaryMetric.score.
torch.json:     bench/gpu/torch_bench.py's output (the kernel workloads).
junit.log:      the console launcher's output; its counts go into the header.
The end-to-end table comes first: card, date, every metric with PyTorch beside it, the target and whether it is met.
The kernel table follows only when kernel results exist. Any file may be missing or partial: missing cells print
as "-", a part the budget skipped prints as "skipped: why".
"""
import argparse
import datetime
import json
import os
import re
import sys

# workload key -> (label, target kernel ms or None)
ROWS = [
    ("copy_1GiB", "device copy 1 GiB D2D (read+write)", None),
    ("logprob_fwd_N8192_V151936_bf16", "log-prob gather (16*512,151936) bf16", 0.70),
    ("logprob_fwd_N16384_V32000_bf16", "log-prob gather (16*1024,32000) bf16", None),
    ("logprob_bwd_N8192_V151936_bf16", "log-prob backward (16*512,151936) bf16", None),
    ("logprob_bwd_N16384_V32000_bf16", "log-prob backward (16*1024,32000) bf16", None),
    ("cosine_N16384_D4096_fp32", "cosine 16384 x 4096 fp32", 0.15),
    ("cosine_N4096_D1024_fp32", "cosine 4096 x 1024 fp32", None),
    ("cosine_N4096_D384_bf16", "cosine 4096 x 384 bf16", None),
    ("gadv_P4096_G16", "group advantages 4096 x 16", 0.006),
    ("gadv_P64_G8", "group advantages 64 x 8", None),
    ("kops_cast_f32_bf16_V151936_C896", "cast (151936,896) fp32 -> bf16", None),
    ("kops_cast_bf16_f32_V151936_C896", "cast (151936,896) bf16 -> fp32", None),
    ("kops_fill_bf16_N8192_F4864", "fill (8192,4864) bf16", None),
    ("kops_add_bf16_N8192_C896", "add (8192,896) bf16", None),
    ("kops_scale_f32_V151936_C896", "scale (151936,896) fp32 in place", None),
    ("kops_bias_grad_bf16_N8192_C896", "bias grad (8192,896) bf16 -> fp32", None),
    ("kops_bias_grad_bf16_N8192_C128", "bias grad (8192,128) bf16 -> fp32", None),
    ("kops_copy_rows_bf16_B16_T512_W128", "KV append (16,512,128) bf16", None),
    ("kops_embedding_fwd_bf16_N8192_C896_V151936", "embedding fwd (8192,896) bf16", None),
    ("kops_argmax_bf16_R64_V151936", "argmax (64,151936) bf16", None),
    ("sampling_B64_V151936_bf16_plain", "sampling (64,151936) bf16, T 1", None),
    ("sampling_B64_V151936_bf16_topk20_topp095", "sampling (64,151936) bf16, T 0.7 k 20 p 0.95", None),
    ("sampling_B64_V151936_bf16_topp09", "sampling (64,151936) bf16, T 1 p 0.9", None),
    ("sampling_B64_V151936_bf16_greedy", "sampling (64,151936) bf16, greedy", None),
    ("sampling_B256_V151936_bf16_plain", "sampling (256,151936) bf16, T 1", None),
    ("sampling_B256_V151936_bf16_topk20_topp095", "sampling (256,151936) bf16, T 0.7 k 20 p 0.95", None),
    ("kops_embedding_bwd_bf16_N8192_C896_V151936", "embedding bwd (8192,896) bf16 -> fp32", None),
    ("kops_rope_table_N8192_D64", "rope table (8192,64)", None),
    ("kops_rope_apply_bf16_N8192_H14_D64", "rope apply (8192,14*64) bf16", None),
    ("kops_swiglu_bf16_N8192_F4864", "swiglu (8192,4864) bf16", None),
    ("kops_swiglu_bwd_bf16_N8192_F4864", "swiglu bwd (8192,4864) bf16", None),
    ("rmsnorm_fwd_R8192_D896_bf16", "rmsnorm (8192,896) bf16", None),
    ("rmsnorm_bwd_R8192_D896_bf16", "rmsnorm bwd (8192,896) bf16, dw fp32", None),
    ("rmsnorm_fwd_R114688_D64_bf16", "rmsnorm q/k per head (8192*14,64) bf16", None),
    ("rmsnorm_bwd_R114688_D64_bf16", "rmsnorm bwd q/k per head (8192*14,64) bf16", None),
    ("cross_entropy_N8192_V151936_bf16", "cross entropy + grad in place (8192,151936) bf16", None),
    ("grpo_loss_B64_L1024", "GRPO loss + dlogp (64,1024)", None),
    ("global_norm_P494032768", "global norm + clip scale, 494M fp32", None),
    ("adamw_P494032768", "AdamW 494M fp32 + bf16 copy", None),
    ("layerNorm_B64_T128_C384_F1536_bf16", "layernorm (8192,384) bf16", None),
    ("gelu_B64_T128_C384_F1536_bf16", "gelu (8192,1536) bf16", None),
    ("meanPool_B64_T128_C384_F1536_bf16", "mean pool (64,128,384) bf16", None),
    ("attn_fwd_B8_T1024_H14_KV2_D64_bf16", "attention causal fwd (8,1024) 14/2 heads D64 bf16", None),
    ("attn_bwd_B8_T1024_H14_KV2_D64_bf16", "attention bwd (8,1024) 14/2 heads D64 bf16", None),
    ("attn_dec_B64_K512_H14_KV2_D64_bf16", "attention decode 64 rows at 512 of 1024, bf16", None),
    ("attn_decat_B64_L64_S384_H14_KV2_D64_bf16", "graph decode (device length) 64 rows at 64 of 384, bf16", None),
    ("attn_decat_B64_L256_S384_H14_KV2_D64_bf16", "graph decode (device length) 64 rows at 256 of 384, bf16", None),
]

# JMH "Class.method" -> key prefix; the benchmark's @Param "workload" is the key's suffix
JMH_PREFIX = {
    "DeviceCopyBench.copy": "copy",
    "LogprobGatherBench.forward": "logprob_fwd",
    "LogprobGatherBench.backward": "logprob_bwd",
    "CosineSimilarityBench.pairs": "cosine",
    "GroupAdvantagesBench.advantages": "gadv",
    "ElementwiseOpsBench.op": "kops",
    "GemmBench.gemm": "gemm",
    "RmsNormBench.forward": "rmsnorm_fwd",
    "RmsNormBench.backward": "rmsnorm_bwd",
    "CrossEntropyBench.forwardBackward": "cross_entropy",
    "GrpoLossBench.grpoLoss": "grpo_loss",
    "SamplingBench.sample": "sampling",
    "OptimizerBench.globalNorm": "global_norm",
    "OptimizerBench.adamw": "adamw",
    "EncoderOpsBench.layerNorm": "layerNorm",
    "EncoderOpsBench.gelu": "gelu",
    "EncoderOpsBench.meanPool": "meanPool",
}

# LaunchOverheadBench methods (JMH, time per launch) -> label
LAUNCH = [
    ("api", "kernel launch through its Java API (CosineSimilarity.pairs)"),
    ("kernelLocal", "Kernel.launch + KernelArgs.local()"),
    ("allocatingPerLaunch", "old path: map lookup + KernelArgs.of() per launch"),
    ("gemmCached", "Gemm.matmul, cached plan (16x16x16 bf16)"),
]
LAUNCH_TARGET_US = 2.0

TIME_UNIT_MS = {"ns/op": 1e-6, "us/op": 1e-3, "ms/op": 1.0, "s/op": 1e3}


def load_json(path):
    if not path or not os.path.exists(path) or os.path.getsize(path) == 0:
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except Exception as e:  # noqa: BLE001
        print(f"table: cannot read {path}: {e}", file=sys.stderr)
        return None


def load_ours(path):
    ours = {}
    if not path or not os.path.exists(path):
        return ours
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                print(f"table: {path}:{n} is not JSON, skipped", file=sys.stderr)
                continue
            if "key" in rec:
                # a later line for the same key (a rerun) replaces the earlier one, an error never replaces a result
                if "error" in rec and rec["key"] in ours and "error" not in ours[rec["key"]]:
                    continue
                ours[rec["key"]] = rec
    return ours


def load_jmh(path):
    data = load_json(path)
    out = {}
    if not data:
        return out
    runs = data if data and isinstance(data[0], dict) else [r for part in data for r in part]
    for r in runs:
        try:
            cls_method = ".".join(r["benchmark"].split(".")[-2:])
            prefix = JMH_PREFIX.get(cls_method)
            if prefix is None:
                continue
            workload = (r.get("params") or {}).get("workload")
            key = f"{prefix}_{workload}" if workload else prefix
            pm = r["primaryMetric"]
            out[key] = pm["score"] * TIME_UNIT_MS.get(pm.get("scoreUnit", "us/op"), 1e-3)
        except (KeyError, TypeError, IndexError):
            continue
    return out


def load_launch(path):
    """LaunchOverheadBench scores in microseconds per launch, by method."""
    data = load_json(path)
    out = {}
    if not data:
        return out
    runs = data if data and isinstance(data[0], dict) else [r for part in data for r in part]
    for r in runs:
        try:
            cls, method = r["benchmark"].split(".")[-2:]
            if cls != "LaunchOverheadBench":
                continue
            pm = r["primaryMetric"]
            out[method] = pm["score"] * TIME_UNIT_MS.get(pm.get("scoreUnit", "us/op"), 1e-3) * 1000
        except (KeyError, TypeError, ValueError):
            continue
    return out


def gemm_lines(ours, jmh):
    """The GEMM workloads (keys gemm_*): kernel time, TFLOP/s next to the dense peak, the Java call."""
    keys = [k for k in ours if k.startswith("gemm_")]
    if not keys:
        return []
    head = ["GEMM (bf16, fp32 accumulate)", "ours kernel (events)", "ours Java call", "TFLOP/s", "% of dense peak"]
    rows = []
    for k in keys:
        o = ours[k]
        if "error" in o:
            rows.append([k[5:], "FAILED: " + str(o["error"]).replace("java.lang.", "")[:48], "-", "-", "-"])
            continue
        tf, peak = o.get("TFLOPs"), o.get("peak_TFLOPs")
        rows.append([k[5:] + f" N={o.get('tokens', '?')}", fmt_ms(o.get("kernel_ms")), fmt_ms(jmh.get(k)),
                     f"{tf:.0f}" if tf else "-", f"{100 * tf / peak:.0f}% of {peak:.0f}" if tf and peak else "-"])
    return table(head, rows)


def baseline_rows(base, launch):
    """The C baseline (launch_baseline.c): cuLaunchKernel's own host time, 8 and 0 kernel parameters."""
    label = "kernel launch, host time: C cuLaunchKernel (8 args) / (0 args)"
    st = state(base)
    if st:
        return [[label, st, ""]]
    emu = " (EMULATOR)" if base.get("emulator") else ""

    def cell(part):
        if not isinstance(part, dict):
            return "-"
        if "skipped" in part:
            return "skipped: " + str(part["skipped"])[:60]
        try:
            return (f"median {part['median_ns'] / 1e3:.2f} (min {part['min_ns'] / 1e3:.2f}, "
                    f"mean {part['mean_ns'] / 1e3:.2f}){emu}")
        except (KeyError, TypeError):
            return "-"
    a8, a0 = base.get("args8"), base.get("args0")
    rows = [["C cuLaunchKernel, cosine kernel (8 args), bursts of 128", cell(a8), ""],
            ["C cuLaunchKernel, empty kernel (0 args), bursts of 128", cell(a0), ""]]
    # the Java launch path over the driver's own: JMH's average against the C mean, same kernel and arguments
    if isinstance(a8, dict) and "mean_ns" in a8 and not base.get("emulator") and (
            launch.get("api") is not None or launch.get("kernelLocal") is not None):
        c = a8["mean_ns"] / 1e3
        rows.append(["  Java over C (8 args): public API / Kernel.launch (JMH average - C mean)",
                     " / ".join("-" if launch.get(m) is None else f"{launch[m] - c:.2f}"
                                for m in ("api", "kernelLocal")), ""])
    return rows


def launch_lines(launch, base=None):
    if not launch and base is None:
        return []
    head = ["host time per launch (Java: JMH average; C: launch_baseline)", "us", f"target <= {LAUNCH_TARGET_US} us"]
    rows = []
    for method, label in (LAUNCH if launch else []):
        v = launch.get(method)
        met = "" if method in ("allocatingPerLaunch", "gemmCached") or v is None else (
            "yes" if v <= LAUNCH_TARGET_US else "NO")
        rows.append([label, "-" if v is None else f"{v:.2f}", met])
    if base is not None:
        rows += baseline_rows(base, launch)
    return table(head, rows)


PROFILE_TOP = 10


def profile_lines(ours):
    """Where the GPU time goes: the largest ops of each profiled run (CudaProfiler, one untimed run per result)."""
    out = []
    for key, rec in ours.items():
        prof = rec.get("profile")
        if not prof:
            continue
        total = rec.get("profile_gpu_ms") or 0
        head = [f"{key}: the {PROFILE_TOP} largest of {rec.get('profile_ops', '?')} ops (GPU {total:.1f} ms summed, "
                f"span {rec.get('profile_span_ms', 0):.1f} ms)", "calls", "GPU ms", "us/call", "share",
                "host us/call"]
        rows = [[r["op"], r["calls"], f"{r['gpu_ms']:.3f}", f"{r['gpu_us_per_call']:.1f}",
                 f"{100 * r['gpu_ms'] / total:.1f}%" if total else "-", f"{r['host_us_per_call']:.1f}"]
                for r in prof[:PROFILE_TOP]]
        if out:
            out.append("")
        out += table(head, rows)
    return out


# What a kernel does, from its name: the Java side's CudaProfiler labels and PyTorch's kernel names (flash/cuDNN
# attention, cuBLAS/CUTLASS GEMMs, fused AdamW, foreach norms). Attention first: flash kernels carry "cutlass" types.
CATEGORIES = [
    ("attention", ("attention_", "flash", "fmha", "sdpa", "attn")),
    ("GEMMs", ("gemm", "nvjet", "xmma", "cutlass", "gemv", "cublas")),
    ("loss (LM-head softmax, cross entropy)", ("cross_entropy", "logprob", "log_softmax", "nll_loss", "softmax")),
    ("optimizer (AdamW, gradient norm)", ("adam", "global_norm", "multi_tensor", "lpnorm")),
]
OTHER = "everything else (norms, RoPE, SwiGLU, embedding, copies, casts)"


def category(op):
    low = op.lower()
    for name, keys in CATEGORIES:
        if any(k in low for k in keys):
            return name
    return OTHER


def category_ms(profile):
    sums = {}
    for r in profile or []:
        c = category(r["op"])
        sums[c] = sums.get(c, 0.0) + float(r["gpu_ms"])
    return sums


def where_time_goes_lines(ours, te):
    """The SFT step's GPU time per kind of kernel, ours beside PyTorch's (one profiled step each)."""
    rec = by_prefix(ours, "train_qwen2.5-0.5b_bf16") or next(
        (v for k, v in ours.items() if k.startswith("train_") and "_bf16_" in k and v.get("profile")), None)
    tw = (te or {}).get("e2e", {})
    cols = [("ours (bf16 + fp32 master)", (rec or {}).get("profile")),
            ("PyTorch bf16", tw.get("train_bf16", {}).get("profile")),
            ("PyTorch fp32 master + autocast", tw.get("train_fp32_autocast", {}).get("profile"))]
    cols = [(n, p) for n, p in cols if p]
    if not cols:
        return []
    sums = [category_ms(p) for _, p in cols]
    head = ["SFT step: GPU ms per kind of kernel (one profiled step each)"] + [n for n, _ in cols]
    rows = []
    for name in [c for c, _ in CATEGORIES] + [OTHER, "total"]:
        cells = []
        for sm in sums:
            total = sum(sm.values())
            v = total if name == "total" else sm.get(name, 0.0)
            cells.append(f"{v:.1f} ({100 * v / total:.0f}%)" if total and name != "total" else f"{v:.1f}")
        rows.append([name] + cells)
    return table(head, rows)


def table(head, rows):
    widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]

    def md(r):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"
    return [md(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [md(r) for r in rows]


def fmt_ms(v):
    if v is None:
        return "-"
    if v < 0.1:
        return f"{v * 1000:.1f} us"
    return f"{v:.3f} ms"


# ------------------------------------------------------------------------------------------------ end to end

# targets of issues [F] and [G]
TRAIN_TARGET_TOK_S = 110_000
TORCH_ANCHOR_PEAK_GIB = 32.7  # PyTorch fp32 master + autocast, H200, 2026-11-26 (shared anchors)
GEN_A_TARGET_TOK_S = 30_000
GEN_B_TARGET_TOK_S = 80_000
GEN_A_STEP_TARGET_MS = 1.0
RLSR_STEP_TARGET_S = 1.5


def dense_bf16_peak(name):
    """TFLOP/s, dense bf16, from the datasheets; the same table as dev.rlsr.bench.gpu.DeviceFacts."""
    n = (name or "").upper()
    if "H200" in n or ("H100" in n and ("SXM" in n or "HBM3" in n)):
        return 989.4
    if "H100" in n and "NVL" in n:
        return 835.0
    if "H100" in n:
        return 756.5
    if "A100" in n:
        return 312.0
    return None


def mfu(rec, peak):
    """tokens/s * (6 P + 12 L H D T) / peak: the formula TrainStepGpuBench reports."""
    try:
        f = 6.0 * rec["params"] + 12.0 * rec["layers"] * rec["heads"] * rec["head_dim"] * rec["seq"]
        return rec["tokens_per_s"] * f / 1e12 / peak if peak else None
    except (KeyError, TypeError):
        return None


def by_prefix(ours, prefix, part=None):
    for k, v in ours.items():
        if k.startswith(prefix) and (part is None or v.get("part") == part):
            return v
    return None


def n0(v):
    return "-" if v is None else f"{v:,.0f}"


def pct(v):
    return "-" if v is None else f"{100 * v:.1f}%"


def gib(v):
    return "-" if v is None else f"{v:.2f} GiB"


def sec(v):
    return "-" if v is None else f"{v:.3f} s"


def ms(v):
    return "-" if v is None else f"{v:.3f} ms"


def state(rec):
    """None when the record has numbers, else the text its cells show (missing, skipped, failed, emulator)."""
    if rec is None:
        return "not run"
    if "skipped" in rec:
        return "skipped: " + str(rec["skipped"])[:60]
    if "error" in rec:
        return "FAILED: " + str(rec["error"]).replace("java.lang.", "")[:60]
    return None


def met(ok, rec=None):
    """yes/NO, or "-" when there is nothing to judge (no value, or timings taken on the CUDA emulator)."""
    if ok is None or (rec is not None and rec.get("emulator")):
        return "-"
    return "yes" if ok else "NO"


def e2e_lines(ours, te):
    tw = (te or {}).get("e2e", {})
    rows = []

    def add(metric, o, t, target, ok):
        rows.append([metric, o, t, target, ok])

    # ---- [F] the SFT step
    # the [F] shapes; a smaller run of the same precision (the emulator's) when they are missing
    tb = by_prefix(ours, "train_qwen2.5-0.5b_bf16_B8_T1024") or next(
        (v for k, v in ours.items() if k.startswith("train_") and "_bf16_" in k), None)
    tf = by_prefix(ours, "train_qwen2.5-0.5b_fp32_B2_T1024") or next(
        (v for k, v in ours.items() if k.startswith("train_") and "_fp32_" in k), None)
    pb, pa, pf = tw.get("train_bf16"), tw.get("train_fp32_autocast"), tw.get("train_fp32")
    peak = dense_bf16_peak((tb or {}).get("device") or (te or {}).get("device", {}).get("name"))
    st = state(tb)
    torch_train = " / ".join(f"{n0(r.get('tokens_per_s'))} ({lbl})" for r, lbl in
                             ((pb, "bf16"), (pa, "fp32 master + autocast")) if r) or "-"
    if st:
        add("SFT step, Qwen2.5-0.5B shape, 8 x 1024, bf16 + fp32 master: tokens/s", st, torch_train,
            f">= {TRAIN_TARGET_TOK_S:,}", "-")
    else:
        emu = " (EMULATOR)" if tb.get("emulator") else ""
        add("SFT step, Qwen2.5-0.5B shape, 8 x 1024, bf16 + fp32 master: tokens/s", n0(tb["tokens_per_s"]) + emu,
            torch_train, f">= {TRAIN_TARGET_TOK_S:,}", met(tb["tokens_per_s"] >= TRAIN_TARGET_TOK_S, tb))
        torch_mfu = " / ".join(pct(mfu(r, peak)) for r in (pb, pa) if r) or "-"
        add(f"  MFU: tokens/s x (6 P + 12 L H D T) / {peak or '?'} TFLOP/s dense bf16", pct(tb.get("mfu")),
            torch_mfu, "reported", "")
        add("  step time: wall (GPU events)", f"{tb['step_ms']:.1f} ms ({tb['gpu_step_ms']:.1f})",
            " / ".join(f"{1e3 * r['step_s']:.1f} ms" for r in (pb, pa) if r and "step_s" in r) or "-", "", "")
        ref = pa.get("peak_gib") if pa else None
        ok = tb["peak_alloc_gib"] <= (ref if ref is not None else TORCH_ANCHOR_PEAK_GIB)
        add("  peak memory: allocated (device used)", f"{gib(tb['peak_alloc_gib'])} ({gib(tb['device_used_gib'])})",
            " / ".join(gib(r.get("peak_gib")) for r in (pb, pa) if r) or "-",
            "<= PyTorch fp32 master + autocast" + ("" if ref is not None else f" ({TORCH_ANCHOR_PEAK_GIB} GiB anchor)"),
            met(ok, tb))
        add("  (N,V) logits held as", f"{tb['logits_dtype']}, {gib(tb['logits_gib'])}", "-", "never fp32",
            met(tb["logits_dtype"] != "F32"))
        add("  driver allocations after warm-up", str(tb["driver_allocs_after_warmup"]), "-", "0",
            met(tb["driver_allocs_after_warmup"] == 0))
    st = state(tf)
    add("SFT step, fp32 reference, 2 x 1024: tokens/s", st or n0(tf["tokens_per_s"]),
        n0(pf.get("tokens_per_s")) if pf else "-", "reported", "")

    # ---- [G] rollouts
    for part, label, target_tok, target_ms in (("a", "(a) 64 sequences (8 x G 8)", GEN_A_TARGET_TOK_S,
                                                 GEN_A_STEP_TARGET_MS),
                                                ("b", "(b) 256 sequences (32 x G 8)", GEN_B_TARGET_TOK_S, None)):
        o = by_prefix(ours, "gen_", part)
        t = tw.get("gen_" + part)
        st = state(o)
        if o and "rows" in o and o.get("emulator"):
            label = f"({part}) {o['rows']} sequences on the emulator"
        metric = f"Rollouts {label}, 128 + 256 tokens, T = 1: new tokens/s"
        if st:
            add(metric, st, n0(t.get("new_tokens_per_s")) if t else "-", f">= {target_tok:,}", "-")
            continue
        emu = " (EMULATOR)" if o.get("emulator") else ""
        add(metric, n0(o["new_tokens_per_s"]) + emu, n0(t.get("new_tokens_per_s")) if t else "-",
            f">= {target_tok:,}", met(o["new_tokens_per_s"] >= target_tok, o))
        add("  decode step (decode time / new tokens per row)", ms(o["decode_step_ms"]),
            ms(t.get("decode_step_ms")) if t else "-", f"<= {target_ms} ms" if target_ms else "reported",
            met(o["decode_step_ms"] <= target_ms, o) if target_ms else "")
        add(f"  roofline: ({o['weight_bytes'] / 1e6:.0f} MB weights + {o['kv_bytes_per_step'] / 1e6:.0f} MB KV) "
            f"/ {o['copy_GBps']:.0f} GB/s copy",
            f"{ms(o['roofline_step_ms'])} = {n0(o['roofline_new_tokens_per_s'])} tok/s; at {pct(o['fraction_of_roofline'])}",
            (f"at {pct(t['roofline_step_ms'] / t['decode_step_ms'])}"
             if t and t.get("roofline_step_ms") and t.get("decode_step_ms") else "-"), "reported", "")
        add("  peak memory: allocated (device used)", f"{gib(o['peak_alloc_gib'])} ({gib(o['device_used_gib'])})",
            gib(t.get("peak_gib")) if t else "-", "reported", "")

    # ---- [G] (c) the RLSR step
    o = by_prefix(ours, "rlsr_step")
    t = tw.get("rlsr_step")
    st = state(o)
    metric = "(c) RLSR step, 64 rollouts + MiniLM reward + update: seconds"
    tsplit = (f"{sec(t.get('step_s'))}" if t else "-")
    if st:
        add(metric, st, tsplit, f"<= {RLSR_STEP_TARGET_S} s", "-")
    else:
        emu = " (EMULATOR)" if o.get("emulator") else ""
        warm = "" if o.get("steps_run") == 2 else " (cold step)"
        add(metric, sec(o["step_s"]) + warm + emu, tsplit, f"<= {RLSR_STEP_TARGET_S} s",
            met(o["step_s"] <= RLSR_STEP_TARGET_S, o))
        add("  rollout / reward / update", " / ".join(sec(o[k]) for k in ("rollout_s", "reward_s", "update_s")),
            " / ".join(sec(t.get(k)) for k in ("rollout_s", "reward_s", "update_s")) if t else "-", "", "")
        add("  (d) peak memory: allocated (device used)", f"{gib(o['peak_alloc_gib'])} ({gib(o['device_used_gib'])})",
            gib(t.get("peak_gib")) if t else "-", "reported", "")
    return table(["metric", "ours (Java, CudaBackend)", "PyTorch / HF, same call", "target", "met?"], rows)


def junit_counts(path):
    if not path or not os.path.exists(path):
        return None
    text = open(path, errors="replace").read()
    found = {k: int(v) for v, k in re.findall(r"\[\s*(\d+) tests (found|successful|failed|skipped|aborted)\s*\]", text)}
    if not found:
        return "no summary in " + os.path.basename(path)
    return ", ".join(f"{found[k]} {k}" for k in ("found", "successful", "failed", "skipped", "aborted") if k in found)


# ------------------------------------------------------------------------------------------------ main

def kernel_lines(ours, jmh, torch):
    tw = torch.get("workloads", {})
    copy_ours = ours.get("copy_1GiB", {}).get("GBps")
    copy_torch = torch.get("copy_GBps")
    copy_ref = copy_ours or copy_torch
    head = ["workload", "ours kernel (events)", "ours Java call", "GB/s", "% of copy bw", "PyTorch eager",
            "torch.compile", "TRL", "ratio (best torch / ours)", "target", "met?"]
    rows = []
    for key, label, target in ROWS:
        o = ours.get(key, {})
        t = tw.get(key, {})
        if "error" in o:
            kernel_cell = "FAILED: " + str(o["error"]).replace("java.lang.", "")[:48]
            kms = None
        else:
            kms = o.get("kernel_ms")
            kernel_cell = fmt_ms(kms)
            if kms is not None and o.get("validated") is False:
                kernel_cell += " (NOT VALIDATED)"
        gbps = o.get("GBps") if kms is not None else None
        pct_bw = f"{100 * gbps / copy_ref:.0f}%" if gbps and copy_ref else "-"
        torch_times = [t.get(k) for k in ("eager_ms", "compile_ms", "trl_ms") if t.get(k) is not None]
        if key == "copy_1GiB":
            ratio = f"{t['eager_ms'] / kms:.2f}x" if kms and t.get("eager_ms") else "-"
        else:
            ratio = f"{min(torch_times) / kms:.2f}x" if kms and torch_times else "-"
        ok = "" if target is None else ("-" if kms is None else ("yes" if kms <= target else "NO"))
        if "error" in o:
            ok = "FAILED"
        if not o and not t:
            continue
        rows.append([label, kernel_cell, fmt_ms(jmh.get(key)), f"{gbps:.0f}" if gbps else "-", pct_bw,
                     fmt_ms(t.get("eager_ms")), fmt_ms(t.get("compile_ms")), fmt_ms(t.get("trl_ms")), ratio,
                     "" if target is None else "<= " + fmt_ms(target), ok])
    if not rows:
        return []
    lines = [f"kernels: copy bandwidth ours {f'{copy_ours:.0f}' if copy_ours else '-'} GB/s, torch "
             f"{f'{copy_torch:.0f}' if copy_torch else '-'} GB/s (bytes read + written); ours kernel = CUDA-event "
             "median (L2 flushed before each run); Java call = JMH average of launch + stream synchronize; torch = "
             "do_bench median; ratio > 1: ours faster"]
    return lines + table(head, rows)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours")
    ap.add_argument("--torch-e2e")
    ap.add_argument("--jmh")
    ap.add_argument("--torch")
    ap.add_argument("--junit")
    ap.add_argument("--out")
    ap.add_argument("--status", default="", help="one line of phase statuses printed above the table")
    ap.add_argument("--card", default="", help="the GPU's name when no result file names it (nvidia-smi)")
    args = ap.parse_args()

    ours = load_ours(args.ours)
    jmh = load_jmh(args.jmh)
    torch = load_json(args.torch) or {}
    te = load_json(args.torch_e2e) or {}

    dev = te.get("device") or torch.get("device") or {}
    card = (dev.get("name") or next((v.get("device") for v in ours.values() if v.get("device")), None)
            or args.card or "no GPU found")
    lines = [f"GPU check {datetime.date.today().isoformat()}: {card}"
             + (f" ({dev.get('sms')} SMs)" if dev.get("sms") else "")
             + (f", torch {dev.get('torch')}, CUDA {dev.get('cuda')}" if dev.get("torch") else "")
             + (f", transformers {dev.get('transformers')}" if dev.get("transformers") else "")]
    if args.status:
        lines.append(f"phases: {args.status}")
    jc = junit_counts(args.junit)
    if jc:
        lines.append(f"gpu tests (bindings, kernels, engine, bench; rlsr.gpu.required=true): {jc}")
    lines += e2e_lines(ours, te)
    for what in ("skipped", "errors"):
        items = te.get(what)
        if items:
            text = "; ".join(items) if isinstance(items, list) else "; ".join(f"{k}: {v[:100]}" for k, v in items.items())
            lines.append(f"PyTorch {what}: {text}")
    for extra in (kernel_lines(ours, jmh, torch), gemm_lines(ours, jmh),
                  launch_lines(load_launch(args.jmh), ours.get("launch_baseline")), where_time_goes_lines(ours, te),
                  profile_lines(ours)):
        if extra:
            lines.append("")
            lines += extra
    errs = torch.get("errors", {})
    if errs:
        lines.append("torch kernel errors: " + "; ".join(f"{k}: {v[:80]}" for k, v in errs.items()))
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
