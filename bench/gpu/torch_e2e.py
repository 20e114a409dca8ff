#!/usr/bin/env python3
"""The GPU check's PyTorch / Hugging Face side of the end-to-end workloads (issues [F] and [G]), timed the way a
PyTorch user runs them, in the same call as the Java benchmarks (TrainStepGpuBench, GenerationGpuBench):

  python3 bench/gpu/torch_e2e.py --out torch_e2e.json [--budget 150] [--qwen-tokenizer DIR] [--minilm-tokenizer FILE]

Workloads (a Qwen2.5-0.5B-shaped Qwen2ForCausalLM, random init: hidden 896, 24 layers, 14/2 heads, FFN 4864,
vocab 151936, tied; transformers' default attention, sdpa):
  train_bf16           SFT step, batch 8 x 1024 random tokens, labels = input_ids, pure bf16 params + AdamW (fused)
  train_fp32_autocast  the same with fp32 master weights + torch.autocast(bf16) + AdamW (fused)
  train_fp32           all fp32 (no TF32), batch 2 x 1024: the reference for the Java fp32 run
  gen_a / gen_b        HF generate, bf16, 8 (a) / 32 (b) prompts of 128 random tokens x G 8 (repeated rows, as TRL),
                       256 new tokens, do_sample, temperature 1, top_k 0, top_p 1, min_new_tokens 256 (every row runs
                       the full 256, as the Java side with no stop ids)
  rlsr_step            TRL-style GRPO/RLSR step on 64 rollouts: rollout = the gen_a call (its wall time and its
                       sequences), reward = decode with the Qwen tokenizer, x + "\n" + y and x + "\n" + y* through a
                       MiniLM-shaped BertModel (random init, bf16, real WordPiece tokenizer, 256 pieces, mean pooling,
                       L2 norm), cosine; update = TRL's GRPO loss (token level, on-policy ratio, clip 0.2/0.28,
                       beta 0, selective_log_softmax) on all 64 rows, backward, clip 1.0, AdamW; the bf16 model of
                       gen_a (as the anchor's update)
Every step ends with a host read (loss.item()), like the Java side's one read per step. After the timed steps of
train_bf16 and train_fp32_autocast, one more step runs under torch.profiler: every kernel's calls and GPU time
("profile"), for the table's "where the time goes" beside the Java side's CudaProfiler step. Wall-clock times after
warm-up; peaks from torch.cuda.max_memory_allocated (reset before each workload). Every workload is guarded: a
failure lands in "errors", a workload the budget cannot fit in "skipped"; the JSON is rewritten after each one.
"""
import argparse
import os
import sys
import time
import traceback

from results_json import ResultsFile  # bench/gpu, next to this script

T0 = time.time()

VOCAB, HIDDEN, LAYERS, HEADS, KV_HEADS, FFN = 151936, 896, 24, 14, 2, 4864
HEAD_DIM = HIDDEN // HEADS
PROMPT_LEN, NEW_TOKENS, GROUP = 128, 256, 8


def log(msg):
    print(f"[torch-e2e {time.time() - T0:6.1f}s] {msg}", flush=True)


class Results(ResultsFile):
    def __init__(self, path):
        super().__init__(path, {"device": {}, "copy_GBps": None, "e2e": {}, "errors": {}, "skipped": []})

    def put(self, key, value):
        self.data["e2e"][key] = value
        self.save()

    def skip(self, what, why):
        self.data["skipped"].append(f"{what}: {why}")
        self.save()


def kernel_rows(events):
    """(name, calls, GPU us) of each kernel, copy and memset of a torch.profiler run, the largest first."""
    rows = []
    for e in events:
        us = getattr(e, "self_device_time_total", None)
        if us is None:
            us = getattr(e, "self_cuda_time_total", 0)  # torch < 2.4
        if us and us > 0:
            rows.append((e.key, int(e.count), float(us)))
    rows.sort(key=lambda r: -r[2])
    return rows


def profiled_kernels(torch, step):
    """Runs step() once under torch.profiler (CUDA activity): every kernel's calls and GPU ms, the largest first."""
    from torch.profiler import ProfilerActivity, profile
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        step()
        torch.cuda.synchronize()
    rows = kernel_rows(prof.key_averages())
    return [{"op": name, "calls": calls, "gpu_ms": us / 1e3} for name, calls, us in rows]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--budget", type=float, default=150.0, help="seconds for everything; later parts are skipped")
    ap.add_argument("--qwen-tokenizer", default="engine/src/test/resources/tokenizer/qwen3",
                    help="a Qwen tokenizer directory (tokenizer.json), for decoding the completions of rlsr_step")
    ap.add_argument("--minilm-tokenizer", default=".gpu/minilm/tokenizer.json",
                    help="all-MiniLM-L6-v2's tokenizer.json (bench/gpu/prepare.sh copies it into .gpu/minilm/)")
    ap.add_argument("--parts", default="train_bf16,train_fp32_autocast,train_fp32,gen_a,rlsr_step,gen_b")
    ap.add_argument("--train-steps", type=int, default=10)
    args = ap.parse_args()
    res = Results(args.out)
    parts = args.parts.split(",")

    try:
        import torch
    except ImportError as e:
        log(f"no PyTorch here ({e}): nothing to measure")
        res.data["errors"]["torch"] = f"PyTorch is not installed: {e}"
        res.save()
        return 1
    if not torch.cuda.is_available():
        log("no CUDA device visible to PyTorch: nothing to measure")
        res.data["errors"]["device"] = "torch.cuda.is_available() is False"
        res.save()
        return 0
    import transformers
    from transformers import Qwen2Config, Qwen2ForCausalLM
    dev = torch.device("cuda")
    props = torch.cuda.get_device_properties(0)
    res.data["device"] = {"name": props.name, "sms": props.multi_processor_count,
                          "mem_gib": round(props.total_memory / 2**30, 1), "torch": torch.__version__,
                          "cuda": torch.version.cuda, "transformers": transformers.__version__}
    log(f"{props.name}, torch {torch.__version__}, transformers {transformers.__version__}")
    res.save()

    def left():
        return args.budget - (time.time() - T0)

    def guarded(what, f):
        try:
            f()
        except Exception as e:  # noqa: BLE001 - one failure must not stop the others
            log(f"FAILED {what}: {type(e).__name__}: {e}")
            traceback.print_exc(limit=4)
            res.error(what, e)
        finally:
            try:
                torch.cuda.synchronize()
                torch.cuda.empty_cache()
            except Exception as e:  # noqa: BLE001 - a broken context fails the later parts, each on its own
                log(f"after {what}: {type(e).__name__}: {e}")

    # ---------------- device copy bandwidth: the roofline's denominator, as the Java side measures it --------------
    def copy_bw():
        n = 2**30
        src = torch.empty(n, dtype=torch.uint8, device=dev).fill_(1)
        dst = torch.empty_like(src)
        dst.copy_(src)
        times = []
        for _ in range(11):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record(); dst.copy_(src); e.record(); e.synchronize()
            times.append(s.elapsed_time(e))
        times.sort()
        res.data["copy_GBps"] = 2 * n / (times[len(times) // 2] * 1e-3) / 1e9
        res.save()
        log(f"copy 1 GiB D2D: {res.data['copy_GBps']:.0f} GB/s (read + written)")
    guarded("copy", copy_bw)

    def qwen_config():
        return Qwen2Config(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=FFN, num_hidden_layers=LAYERS,
                           num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, max_position_embeddings=32768,
                           rms_norm_eps=1e-6, tie_word_embeddings=True, use_cache=True)

    def new_model(dtype):
        torch.manual_seed(0)
        with torch.device(dev):
            m = Qwen2ForCausalLM(qwen_config())
        return m.to(dtype)

    # ---------------- SFT steps -------------------------------------------------------------------------------------
    def train(key, dtype, autocast, batch, seq):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        model = new_model(dtype)
        model.train()
        params = sum(p.numel() for p in model.parameters())
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                                fused=True)
        g = torch.Generator(device=dev).manual_seed(1234)
        ids = torch.randint(0, VOCAB, (batch, seq), device=dev, generator=g)

        def step():
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
                loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            return loss.item()  # the step's host read

        t = time.time()
        losses = [step() for _ in range(3)]
        warm_s = (time.time() - t) / 3
        steps = max(2, min(args.train_steps, int(0.5 * max(0.0, left() - 60) / max(warm_s, 1e-3))))
        torch.cuda.synchronize()
        t = time.time()
        for _ in range(steps):
            losses.append(step())
        torch.cuda.synchronize()
        step_s = (time.time() - t) / steps
        out = {"params": params, "batch": batch, "seq": seq, "layers": LAYERS, "heads": HEADS, "head_dim": HEAD_DIM,
               "precision": {"train_bf16": "bf16 params and AdamW state",
                             "train_fp32_autocast": "fp32 master + autocast bf16",
                             "train_fp32": "fp32, no TF32"}[key],
               "steps": steps, "step_s": step_s, "tokens_per_s": batch * seq / step_s,
               "peak_gib": (torch.cuda.max_memory_allocated() - base) / 2**30,
               "peak_reserved_gib": torch.cuda.max_memory_reserved() / 2**30, "losses": losses,
               "attn_implementation": getattr(model.config, "_attn_implementation", "?")}
        if key != "train_fp32" and left() > 30:
            # one more, untimed step under torch.profiler: the GPU time of every kernel, for table.py's "where the
            # time goes" beside the Java side's CudaProfiler step
            out["profile"] = profiled_kernels(torch, step)
        res.put(key, out)
        log(f"{key}: {out['tokens_per_s']:.0f} tokens/s ({step_s * 1e3:.1f} ms/step, {steps} steps), peak "
            f"{out['peak_gib']:.2f} GiB")
        del model, opt

    train_parts = {"train_bf16": (torch.bfloat16, False, 8, 1024),
                   "train_fp32_autocast": (torch.float32, True, 8, 1024),
                   "train_fp32": (torch.float32, False, 2, 1024)}
    for key, (dtype, ac, b, t) in train_parts.items():
        if key not in parts:
            continue
        if left() < 45:
            res.skip(key, f"budget ({left():.0f} s left)")
            continue
        guarded(key, lambda key=key, dtype=dtype, ac=ac, b=b, t=t: train(key, dtype, ac, b, t))

    # ---------------- HF generate (a), (b) and the TRL-style RLSR step (c) ------------------------------------------
    state = {}

    def roofline(rows):
        # the Java side's formula: every weight once (bf16), plus the cached keys/values read on average per step
        weight_bytes = 2 * state["params"]
        kv = rows * LAYERS * 2 * KV_HEADS * HEAD_DIM * 2 * (PROMPT_LEN + NEW_TOKENS / 2)
        bw = res.data.get("copy_GBps")
        return weight_bytes, kv, (weight_bytes + kv) / (bw * 1e9) * 1e3 if bw else None

    def gen_model():
        if "model" not in state:
            m = new_model(torch.bfloat16)
            m.eval()
            state["model"] = m
            state["params"] = sum(p.numel() for p in m.parameters())
        return state["model"]

    def generate(key, prompts):
        model = gen_model()
        rows = prompts * GROUP
        g = torch.Generator(device=dev).manual_seed(4321 + rows)
        prompt_ids = torch.randint(0, VOCAB, (prompts, PROMPT_LEN), device=dev, generator=g)
        inputs = prompt_ids.repeat_interleave(GROUP, dim=0)  # TRL repeats each prompt G times
        mask = torch.ones_like(inputs)

        def run(n):
            with torch.no_grad():
                return model.generate(input_ids=inputs, attention_mask=mask, do_sample=True, temperature=1.0,
                                      top_k=0, top_p=1.0, max_new_tokens=n, min_new_tokens=n, pad_token_id=0)

        run(8)  # warm-up
        torch.cuda.synchronize()
        t = time.time()
        run(1)  # prefill + one sampled token: subtracted below to get the per-step decode time
        torch.cuda.synchronize()
        first_s = time.time() - t
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        t = time.time()
        out = run(NEW_TOKENS)
        torch.cuda.synchronize()
        wall = time.time() - t
        new = out.shape[1] - PROMPT_LEN
        if new != NEW_TOKENS:
            raise RuntimeError(f"generate returned {new} new tokens per row, expected {NEW_TOKENS}")
        wb, kv, roof_ms = roofline(rows)
        step_ms = (wall - first_s) / (NEW_TOKENS - 1) * 1e3
        r = {"rows": rows, "prompts": prompts, "group": GROUP, "prompt_len": PROMPT_LEN, "new_tokens_per_row": new,
             "wall_s": wall, "new_tokens_per_s": rows * new / wall, "first_token_s": first_s,
             "decode_step_ms": step_ms, "weight_bytes": wb, "kv_bytes_per_step": kv, "roofline_step_ms": roof_ms,
             "peak_gib": (torch.cuda.max_memory_allocated() - base) / 2**30,
             "sampling": "do_sample, temperature 1, top_k 0, top_p 1, min_new_tokens = max_new_tokens"}
        res.put(key, r)
        log(f"{key}: {r['new_tokens_per_s']:.0f} new tokens/s ({wall:.2f} s, {step_ms:.2f} ms per decode step)")
        return prompt_ids, out, wall

    def rlsr_step(prompt_ids, sequences, rollout_s):
        from tokenizers import Tokenizer
        from transformers import BertConfig, BertModel
        import torch.nn.functional as F
        model = gen_model()
        rows = sequences.shape[0]
        qtok = Tokenizer.from_file(os.path.join(args.qwen_tokenizer, "tokenizer.json"))
        mtok = Tokenizer.from_file(args.minilm_tokenizer)
        mtok.enable_truncation(256)
        mtok.enable_padding(pad_id=0, pad_token="[PAD]")
        torch.manual_seed(1)
        with torch.device(dev):
            enc = BertModel(BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                                       intermediate_size=1536, max_position_embeddings=512),
                            add_pooling_layer=False)
        enc = enc.to(torch.bfloat16).eval()
        words = "the of and to in is that for it as was with be by on not he this are or his".split()
        refs = [" ".join(words[(p * 7 + i) % len(words)] for i in range(100)) for p in range(prompt_ids.shape[0])]

        def reward():
            vocab = qtok.get_vocab_size()
            prompts_text = qtok.decode_batch([[i % vocab for i in row] for row in prompt_ids.tolist()])
            completions = sequences[:, PROMPT_LEN:].tolist()
            texts = qtok.decode_batch([[i % vocab for i in row] for row in completions])
            batch = [prompts_text[r // GROUP] + "\n" + texts[r] for r in range(rows)]
            batch += [prompts_text[p] + "\n" + refs[p] for p in range(len(refs))]
            encs = mtok.encode_batch(batch)
            ids = torch.tensor([e.ids for e in encs], device=dev)
            am = torch.tensor([e.attention_mask for e in encs], device=dev)
            with torch.no_grad():
                h = enc(input_ids=ids, attention_mask=am).last_hidden_state.float()
            pooled = (h * am.unsqueeze(-1)).sum(1) / am.sum(1, keepdim=True)
            e = F.normalize(pooled, dim=-1)
            ref_idx = torch.arange(rows, device=dev) // GROUP + rows
            r = (e[:rows] * e[ref_idx]).sum(-1)
            return r.tolist()  # host read: the rewards

        def selective_log_softmax(logits, index):
            # trl.trainer.utils.selective_log_softmax, bf16 branch (a row loop bounds the peak)
            out = []
            for row_logits, row_labels in zip(logits, index):
                row_logps = F.log_softmax(row_logits, dim=-1)
                out.append(row_logps.gather(dim=-1, index=row_labels.unsqueeze(-1)).squeeze(-1))
            return torch.stack(out)

        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-6, weight_decay=0.0, fused=True)
        completion_mask = torch.zeros_like(sequences, dtype=torch.float32)
        completion_mask[:, PROMPT_LEN:] = 1.0
        attn = torch.ones_like(sequences)

        def update(rewards):
            r = torch.tensor(rewards, device=dev).view(-1, GROUP)
            adv = ((r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + 1e-4)).view(-1)
            logits = model(input_ids=sequences, attention_mask=attn).logits[:, PROMPT_LEN - 1:-1]
            logp = selective_log_softmax(logits, sequences[:, PROMPT_LEN:])
            ratio = torch.exp(logp - logp.detach())
            a = adv.unsqueeze(1)
            per_token = -torch.min(ratio * a, torch.clamp(ratio, 1 - 0.2, 1 + 0.28) * a)
            m = completion_mask[:, PROMPT_LEN:]
            loss = (per_token * m).sum() / m.sum()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            return loss.item()  # the step's host read

        rw = reward()  # warm-up (cuBLAS plans, tokenizers)
        update(rw)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t = time.time()
        rw = reward()
        reward_s = time.time() - t
        t = time.time()
        loss = update(rw)
        torch.cuda.synchronize()
        update_s = time.time() - t
        out = {"rows": rows, "rollout_s": rollout_s, "reward_s": reward_s, "update_s": update_s,
               "step_s": rollout_s + reward_s + update_s, "loss": loss,
               "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
               "what": "rollout = the gen_a generate call; reward and update timed after one warm-up each; bf16 "
                       "params (as the anchor's update), no reference model (beta 0)"}
        res.put("rlsr_step", out)
        log(f"rlsr_step: {out['step_s']:.2f} s = rollout {rollout_s:.2f} + reward {reward_s:.3f} + update "
            f"{update_s:.3f}")
        model.eval()
        del opt

    if "gen_a" in parts or "rlsr_step" in parts:
        if left() < 40:
            res.skip("gen_a", f"budget ({left():.0f} s left)")
        else:
            def part_a():
                state["a"] = generate("gen_a", 8)
            guarded("gen_a", part_a)
    if "rlsr_step" in parts:
        if "a" not in state:
            res.skip("rlsr_step", "needs the gen_a rollouts")
        elif left() < 25:
            res.skip("rlsr_step", f"budget ({left():.0f} s left)")
        else:
            guarded("rlsr_step", lambda: rlsr_step(*state["a"]))
    if "gen_b" in parts:
        # HF generate is launch-bound at these sizes: (b) costs about (a)'s time, plus the larger sampling work
        need = 1.5 * state["a"][2] + 10 if "a" in state else 60
        if left() < need:
            res.skip("gen_b", f"budget (about {need:.0f} s needed, {left():.0f} s left)")
        else:
            guarded("gen_b", lambda: generate("gen_b", 32))
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
