#!/usr/bin/env python3
"""Merges the GPU check's results into one table (stdout and --out as Markdown).

  python3 bench/gpu/table.py --ours ours.jsonl --jmh jmh.json --torch torch.json --out table.md [--status "..."]

ours.jsonl: one JSON object per line, written by the JMH benchmarks' setup (dev.rlsr.bench.gpu.GpuResults):
  {"key", "kernel_ms" (CUDA-event median), "bytes", "GBps", "validated", "error"?, ...}
jmh.json:   JMH's -rf json output (a list, or a list of lists when several runs were merged); the Java call time
            (launch + stream synchronize) is primaryMetric.score.
torch.json: bench/gpu/torch_bench.py's output.
Any file may be missing or partial: the missing cells print as "-".
"""
import argparse
import json
import os
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


def launch_lines(launch):
    if not launch:
        return []
    head = ["host time per launch (JMH)", "us", f"target <= {LAUNCH_TARGET_US} us"]
    rows = []
    for method, label in LAUNCH:
        v = launch.get(method)
        met = "" if method in ("allocatingPerLaunch", "gemmCached") or v is None else (
            "yes" if v <= LAUNCH_TARGET_US else "NO")
        rows.append([label, "-" if v is None else f"{v:.2f}", met])
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours")
    ap.add_argument("--jmh")
    ap.add_argument("--torch")
    ap.add_argument("--out")
    ap.add_argument("--status", default="", help="one line of phase statuses printed above the table")
    args = ap.parse_args()

    ours = load_ours(args.ours)
    jmh = load_jmh(args.jmh)
    torch = load_json(args.torch) or {}
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
        pct = f"{100 * gbps / copy_ref:.0f}%" if gbps and copy_ref else "-"
        torch_times = [t.get(k) for k in ("eager_ms", "compile_ms", "trl_ms") if t.get(k) is not None]
        if key == "copy_1GiB":
            ratio = f"{t['eager_ms'] / kms:.2f}x" if kms and t.get("eager_ms") else "-"
        else:
            ratio = f"{min(torch_times) / kms:.2f}x" if kms and torch_times else "-"
        met = "" if target is None else ("-" if kms is None else ("yes" if kms <= target else "NO"))
        if "error" in o:
            met = "FAILED"
        rows.append([label, kernel_cell, fmt_ms(jmh.get(key)), f"{gbps:.0f}" if gbps else "-", pct,
                     fmt_ms(t.get("eager_ms")), fmt_ms(t.get("compile_ms")), fmt_ms(t.get("trl_ms")), ratio,
                     "" if target is None else "<= " + fmt_ms(target), met])

    dev = torch.get("device", {})
    lines = []
    if args.status:
        lines.append(f"phases: {args.status}")
    lines.append(f"device: {dev.get('name', '?')} ({dev.get('sms', '?')} SMs), torch {dev.get('torch', '?')}, "
                 f"CUDA {dev.get('cuda', '?')}; copy bandwidth ours "
                 f"{f'{copy_ours:.0f}' if copy_ours else '-'} GB/s, torch "
                 f"{f'{copy_torch:.0f}' if copy_torch else '-'} GB/s (bytes read + written)")
    lines.append("ours kernel = CUDA-event median (L2 flushed before each run); Java call = JMH average of "
                 "launch + stream synchronize; torch = do_bench median; ratio > 1: ours faster")
    widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]

    def md(r):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"
    lines.append(md(head))
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += [md(r) for r in rows]
    for extra in (gemm_lines(ours, jmh), launch_lines(load_launch(args.jmh))):
        if extra:
            lines.append("")
            lines += extra
    errs = {k: v for k, v in torch.get("errors", {}).items()}
    if errs:
        lines.append("torch errors: " + "; ".join(f"{k}: {v[:80]}" for k, v in errs.items()))
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
