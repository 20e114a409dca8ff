#!/usr/bin/env bash
# The GPU check, run ON the GPU machine from the repository root (no JDK, no Maven, no network needed):
#   bash bench/gpu/run.sh            # results under $OUT (default /tmp/rlsr-gpu-out)
# Needs .gpu/ filled by bench/gpu/prepare.sh. Phases, each guarded and time-boxed, none stops the next:
#   env     unpack .gpu/jre.txz, print the GPU, driver and CUDA versions
#   launch  .gpu/launch_baseline (C, bench/gpu/launch_baseline.c): the host time of cuLaunchKernel itself, the
#           baseline of LaunchOverheadBench; a few seconds (timeout T_LAUNCH=30)        -> a line in $OUT/ours.jsonl
#   tests   every JUnit test tagged "gpu" (bindings, kernels, engine: conformance and HF parity on CUDA fp32 and
#           bf16; bench: the end-to-end benchmarks at small shapes) with rlsr.gpu.required=true (a skip is a failure)
#           on the real GPU                                                               -> $OUT/junit.log
#   train   TrainStepGpuBench: the SFT step, bf16 + fp32 master at 8 x 1024, and fp32 at 2 x 1024
#   gen     GenerationGpuBench: rollouts at 64 and 256 sequences, one RLSR step, peak memory
#   torch   bench/gpu/torch_e2e.py: the same workloads in PyTorch / HF transformers  -> $OUT/torch_e2e.json
#   jmh     (only with T_JMH > 0 or JMH_CLASSES) the kernel JMH benchmarks + torch_bench.py's kernel side
#   table   bench/gpu/table.py merges everything -> one table, printed last and written to $OUT/table.md
# $OUT gets at most 8 files: run.log, junit.log, ours.jsonl, torch_e2e.json, table.md (+ jmh.log, jmh.json,
# torch.json when the jmh phase runs). ours.jsonl gathers the Java benchmarks' result lines and launch_baseline's;
# their logs are in run.log.
# Budget: RLSR_GPU_BUDGET seconds in all (default 470: the whole check, start-up included, inside an 8-minute
# window); each phase has its own cap (T_LAUNCH, T_TESTS, T_TRAIN, T_GEN, T_TORCH, T_JMH) and never takes the time the
# later phases are promised. A part that does not fit is skipped and the table says so.
set -uo pipefail
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/../.." || exit 2
ROOT=$(pwd)
OUT=${OUT:-/tmp/rlsr-gpu-out}
mkdir -p "$OUT"
GPU=$ROOT/.gpu
START=$(date +%s)
BUDGET=${RLSR_GPU_BUDGET:-470}
T_TESTS=${T_TESTS:-110}
T_TRAIN=${T_TRAIN:-75}
T_GEN=${T_GEN:-120}
T_TORCH=${T_TORCH:-130}
T_JMH=${T_JMH:-0}
T_LAUNCH=${T_LAUNCH:-30}
[ -n "${JMH_CLASSES:-}" ] && [ "$T_JMH" -eq 0 ] && T_JMH=150
RESERVE_TABLE=10
JFLAGS="--enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector"
KCACHE=/tmp/rlsr-kernel-cache   # NVRTC cubins, shared by the test JVM and every benchmark JVM
QWEN_TOK=$ROOT/engine/src/test/resources/tokenizer/qwen3
export RLSR_FIXTURES=${RLSR_FIXTURES:-$ROOT/engine/src/test/resources/fixtures}
export DJL_CACHE_DIR=${DJL_CACHE_DIR:-/tmp/rlsr-djl}
declare -A STATUS

# seconds a phase may take: its cap, but never more than what is left before the later phases' promised caps
allot() { # allot CAP RESERVE_AFTER
  local left=$(( START + BUDGET - $(date +%s) - $2 ))
  (( left < $1 )) && echo $(( left > 5 ? left : 5 )) || echo "$1"
}
rc_word() { case $1 in 0) echo ok ;; 124|137) echo "TIMEOUT" ;; *) echo "FAIL($1)" ;; esac; }
elapsed() { echo $(( $(date +%s) - START )); }
# each later phase keeps at least this much of its cap when an earlier one runs long
reserve_after() { # phase name -> seconds promised to the phases after it
  case $1 in
    tests) echo $(( T_TRAIN * 2 / 3 + T_GEN * 2 / 3 + T_TORCH * 2 / 3 + T_JMH + RESERVE_TABLE )) ;;
    train) echo $(( T_GEN * 2 / 3 + T_TORCH * 2 / 3 + T_JMH + RESERVE_TABLE )) ;;
    gen) echo $(( T_TORCH * 2 / 3 + T_JMH + RESERVE_TABLE )) ;;
    torch) echo $(( T_JMH + RESERVE_TABLE )) ;;
    *) echo "$RESERVE_TABLE" ;;
  esac
}

main() {
  echo "=== RLSR GPU check $(date -u +%FT%TZ), repo $(git rev-parse --short HEAD 2>/dev/null || echo '?'), OUT=$OUT"
  [ -f "$GPU/MANIFEST.txt" ] && head -n 1 "$GPU/MANIFEST.txt"

  # ---------------- env ----------------
  echo "=== [env] t=$(elapsed)s"
  nvidia-smi -L 2>&1 || echo "nvidia-smi -L failed"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem --format=csv 2>&1 || true
  nvidia-smi 2>/dev/null | grep -o 'CUDA Version: [0-9.]*' || echo "CUDA version: not reported by nvidia-smi"
  command -v nvcc >/dev/null && nvcc --version | tail -n 2
  python3 -c 'import torch, triton, transformers; print("torch", torch.__version__, "cuda", torch.version.cuda, "triton", triton.__version__, "transformers", transformers.__version__)' 2>&1 | tail -n 1
  JAVA=""
  if [ -f "$GPU/jre.txz" ]; then
    rm -rf /tmp/rlsr-jre && mkdir -p /tmp/rlsr-jre
    # xz through tar where it can, else through Python's lzma
    if tar xJf "$GPU/jre.txz" -C /tmp/rlsr-jre 2>/dev/null \
       || python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1], "r:xz").extractall(sys.argv[2])' \
            "$GPU/jre.txz" /tmp/rlsr-jre; then
      JAVA=/tmp/rlsr-jre/jre/bin/java
      "$JAVA" -version 2>&1 | head -n 1 || JAVA=""
    fi
  else
    echo "no $GPU/jre.txz: run bench/gpu/prepare.sh first"
  fi
  [ -z "$JAVA" ] && command -v java >/dev/null && JAVA=$(command -v java) && echo "using system java: $JAVA"
  STATUS[env]=$([ -n "$JAVA" ] && echo ok || echo "FAIL(no java)")
  # CUDA libraries for the JVM: the loader's own path first, then the toolkit and driver folders, then PyTorch's
  # pip wheels (NCCL often ships only there); the bindings load libraries by soname through this path
  local extra="" d sp so where
  for d in /usr/local/cuda/lib64 /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do [ -d "$d" ] && extra="$extra:$d"; done
  sp=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null || true)
  if [ -n "$sp" ] && [ -d "$sp/nvidia" ]; then
    while read -r d; do extra="$extra:$d"; done < <(find "$sp/nvidia" -name 'lib*.so*' -printf '%h\n' 2>/dev/null | sort -u)
  fi
  JAVA_LD="${LD_LIBRARY_PATH:-}$extra"; JAVA_LD=${JAVA_LD#:}
  for so in libcuda.so.1 libnvrtc.so.13 libcublas.so.13 libcublasLt.so.13 libnccl.so.2; do
    where=""
    for d in ${JAVA_LD//:/ }; do [ -e "$d/$so" ] && where="$d/$so" && break; done
    [ -z "$where" ] && where=$(ldconfig -p 2>/dev/null | awk -v s="$so" '$1==s {print $NF; exit}')
    echo "  $so -> ${where:-NOT FOUND}"
  done
  mkdir -p "$KCACHE"
  local CP="$GPU/bench.jar:$GPU/lib/*"
  : >"$OUT/ours.jsonl"
  # rlsr.cuda.emulator empty: the real driver, never the emulator, whatever a surefire-style setting says
  local JRUN=("$JAVA" $JFLAGS -Xss8m -Drlsr.kernel.cache="$KCACHE" -Drlsr.cuda.emulator= -Drlsr.test.cuda.emulator=)

  # ---------------- the C baseline of the launch host cost ----------------
  echo "=== [launch] t=$(elapsed)s"
  launch_phase

  # ---------------- gpu-tagged tests ----------------
  echo "=== [tests] t=$(elapsed)s"
  local t; t=$(allot "$T_TESTS" "$(reserve_after tests)")
  local junit; junit=$(ls "$GPU"/junit/junit-platform-console-standalone-*.jar 2>/dev/null | head -n 1)
  if (( T_TESTS <= 0 )); then
    echo "tests left out (T_TESTS=0)"; STATUS[tests]="left out"
  elif [ -z "$JAVA" ] || [ -z "$junit" ] || [ ! -d "$GPU/test-classes" ]; then
    echo "tests skipped: java='$JAVA' junit='$junit' test-classes: $(ls "$GPU/test-classes" 2>/dev/null | tr '\n' ' ')"
    STATUS[tests]="skipped"
  else
    local tcp="$junit" scan=()
    for d in "$GPU"/test-classes/*/; do tcp="$tcp:${d%/}"; scan+=("--scan-class-path=${d%/}"); done
    # bench's tests run its benchmark mains, which live in bench.jar
    tcp="$tcp:$GPU/bench.jar:$GPU/lib/*"
    # JUNIT_SELECT="--select-class=a.B --select-method=c.D#m ...": only those (a rerun of what failed), else every class
    # shellcheck disable=SC2206
    [ -n "${JUNIT_SELECT:-}" ] && scan=($JUNIT_SELECT)
    echo "running ${scan[*]#--scan-class-path=} (timeout ${t}s); fixtures $RLSR_FIXTURES; tree in $OUT/junit.log"
    # rlsr.gpu.required: a GPU test that finds no device or CUDA library fails here instead of skipping
    LD_LIBRARY_PATH="$JAVA_LD" timeout -k 10 "$t" "${JRUN[@]}" -Drlsr.gpu.required=true -cp "$tcp" \
      org.junit.platform.console.ConsoleLauncher execute "${scan[@]}" --include-tag=gpu \
      --details=tree --details-theme=ascii --disable-banner --disable-ansi-colors >"$OUT/junit.log" 2>&1
    local rc=$?
    STATUS[tests]=$(rc_word $rc)
    # failures ([X]) and skips by assumption ([A]), shortened; the whole tree is in junit.log
    grep -E '\[X\]|\[A\]|Caused by|Exception:' "$OUT/junit.log" | cut -c1-220 | head -n 25
    grep -E 'tests (found|successful|failed|skipped|aborted)|containers (failed|aborted)' "$OUT/junit.log" \
      | tr -s ' ' | tr '\n' ' '; echo
    grep -qE 'tests successful' "$OUT/junit.log" || tail -n 15 "$OUT/junit.log"
  fi

  # ---------------- the SFT training step ----------------
  echo "=== [train] t=$(elapsed)s"
  if (( T_TRAIN <= 0 )); then
    echo "train left out (T_TRAIN=0)"; STATUS[train]="left out"
  elif [ -z "$JAVA" ] || [ ! -f "$GPU/bench.jar" ]; then
    echo "train skipped: java='$JAVA', $GPU/bench.jar $( [ -f "$GPU/bench.jar" ] && echo present || echo missing)"
    STATUS[train]="skipped"
  else
    local tt; tt=$(allot "$T_TRAIN" "$(reserve_after train)")
    local tend=$(( $(date +%s) + tt )) worst=0 spec noGpu=0
    # the [F] workload first; the fp32 reference (smaller batch) gets what is left
    for spec in "bf16 8 55" "fp32 2 45"; do
      set -- $spec
      local cap=$(( (tend - $(date +%s)) * $3 / 100 ))
      [ "$1" = fp32 ] && cap=$(( tend - $(date +%s) ))
      if (( cap < 20 )); then
        echo "train $1: skipped (${cap}s left)"
        echo "{\"key\": \"train_qwen2.5-0.5b_$1_B$2_T1024\", \"skipped\": \"budget: ${cap} s left\"}" >>"$OUT/ours.jsonl"
        continue
      fi
      LD_LIBRARY_PATH="$JAVA_LD" timeout -k 10 "$cap" "${JRUN[@]}" -Drlsr.bench.out="$OUT/ours.jsonl" -cp "$CP" \
        dev.rlsr.bench.gpu.TrainStepGpuBench --model=qwen2.5-0.5b --precision="$1" --batch="$2" --seq=1024 \
        --warmup=3 --steps=10 --budget=$(( cap - 10 )) 2>&1 | grep -v -e '^WARNING' -e 'SLF4J' | tee /tmp/rlsr-bench.log
      local rc=${PIPESTATUS[0]}
      echo "    train $1: $(rc_word "$rc")"
      (( rc != 0 )) && worst=$rc
      grep -q '^SKIP' /tmp/rlsr-bench.log && noGpu=1
    done
    STATUS[train]=$(rc_word $worst)
    (( noGpu && worst == 0 )) && STATUS[train]="skipped(no GPU)"
  fi

  # ---------------- rollouts and the RLSR step ----------------
  echo "=== [gen] t=$(elapsed)s"
  if (( T_GEN <= 0 )); then
    echo "gen left out (T_GEN=0)"; STATUS[gen]="left out"
  elif [ -z "$JAVA" ] || [ ! -f "$GPU/bench.jar" ]; then
    echo "gen skipped"; STATUS[gen]="skipped"
  else
    local tg; tg=$(allot "$T_GEN" "$(reserve_after gen)")
    LD_LIBRARY_PATH="$JAVA_LD" timeout -k 10 "$tg" "${JRUN[@]}" -Drlsr.bench.out="$OUT/ours.jsonl" -cp "$CP" \
      dev.rlsr.bench.gpu.GenerationGpuBench --parts=a,c,b --budget=$(( tg - 10 )) \
      --tokenizer="$QWEN_TOK" --minilm-tokenizer="$GPU/minilm/tokenizer.json" 2>&1 | grep -v -e '^WARNING' -e 'SLF4J' \
      | tee /tmp/rlsr-bench.log
    STATUS[gen]=$(rc_word "${PIPESTATUS[0]}")
    grep -q '^SKIP' /tmp/rlsr-bench.log && [ "${STATUS[gen]}" = ok ] && STATUS[gen]="skipped(no GPU)"
  fi

  # ---------------- PyTorch / HF side by side ----------------
  echo "=== [torch] t=$(elapsed)s"
  if (( T_TORCH <= 0 )); then
    echo "torch left out (T_TORCH=0)"; STATUS[torch]="left out"
  else
    local tt2; tt2=$(allot "$T_TORCH" "$(reserve_after torch)")
    timeout -k 5 "$tt2" python3 "$ROOT/bench/gpu/torch_e2e.py" --out "$OUT/torch_e2e.json" --budget $(( tt2 - 10 )) \
      --qwen-tokenizer "$QWEN_TOK" --minilm-tokenizer "$GPU/minilm/tokenizer.json"
    STATUS[torch]=$(rc_word $?)
  fi

  # ---------------- (optional) kernel JMH benchmarks + their PyTorch side ----------------
  if (( T_JMH > 0 )); then
    echo "=== [jmh] t=$(elapsed)s"
    jmh_phase "$(allot "$T_JMH" "$RESERVE_TABLE")"
  fi

  # ---------------- the table ----------------
  echo "=== [table] t=$(elapsed)s"
  local st="env=${STATUS[env]} launch=${STATUS[launch]:-?} tests=${STATUS[tests]} train=${STATUS[train]}"
  st="$st gen=${STATUS[gen]} torch=${STATUS[torch]}"
  (( T_JMH > 0 )) && st="$st jmh=${STATUS[jmh]:-?}"
  st="$st total=$(elapsed)s"
  timeout -k 5 "$RESERVE_TABLE" python3 "$ROOT/bench/gpu/table.py" --ours "$OUT/ours.jsonl" \
    --torch-e2e "$OUT/torch_e2e.json" --jmh "$OUT/jmh.json" --torch "$OUT/torch.json" --junit "$OUT/junit.log" \
    --out "$OUT/table.md" --status "$st" --card "$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)" \
    || echo "table.py failed; $st"
}

# bench/gpu/launch_baseline.c (built by prepare.sh into .gpu/launch_baseline): cuLaunchKernel's host time from C, the
# cosine kernel with LaunchOverheadBench's 8 arguments and an empty kernel, against the real driver and NVRTC through
# the JVMs' LD_LIBRARY_PATH. Its JSON line goes to ours.jsonl; a missing binary or a failure is recorded there too.
launch_phase() {
  local bin=$GPU/launch_baseline log=/tmp/rlsr-launch.log rc
  : >"$log"
  if (( T_LAUNCH <= 0 )); then
    echo "launch left out (T_LAUNCH=0)"; STATUS[launch]="left out"; return
  fi
  # a binary that does not run here (another glibc) is rebuilt where a compiler exists; usage is exit status 2
  if [ -x "$bin" ]; then "$bin" >/dev/null 2>&1; rc=$?; else rc=127; fi
  if (( rc != 2 )) && command -v gcc >/dev/null 2>&1; then
    echo "$bin $([ -x "$bin" ] && echo "does not run here (exit $rc)" || echo missing): building it with gcc"
    bin=/tmp/rlsr-launch_baseline
    gcc -std=c11 -O2 -Wall -Wextra -o "$bin" "$ROOT/bench/gpu/launch_baseline.c" -ldl || rm -f "$bin"
  fi
  if [ ! -x "$bin" ]; then
    echo "launch skipped: no runnable launch_baseline (prepare.sh builds .gpu/launch_baseline with gcc)"
    STATUS[launch]="skipped"
    echo '{"bench":"launch_baseline","key":"launch_baseline","skipped":"no runnable .gpu/launch_baseline (no gcc?)"}' \
      >>"$OUT/ours.jsonl"
    return
  fi
  # the real driver and NVRTC, whatever RLSR_CUDA_LIB / RLSR_NVRTC_LIB say (as the JVMs get rlsr.cuda.emulator=)
  LD_LIBRARY_PATH="$JAVA_LD" timeout -k 5 "$T_LAUNCH" env -u RLSR_CUDA_LIB -u RLSR_NVRTC_LIB \
    "$bin" "$ROOT/native/cuda/cosine_similarity.cu" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  if grep -q '^{"bench":"launch_baseline"' "$log"; then
    grep '^{"bench":"launch_baseline"' "$log" | tail -n 1 >>"$OUT/ours.jsonl"
  else
    echo "{\"bench\":\"launch_baseline\",\"key\":\"launch_baseline\",\"error\":\"$(rc_word $rc), no result line\"}" \
      >>"$OUT/ours.jsonl"
  fi
  STATUS[launch]=$(rc_word $rc)
  grep -q '^SKIP' "$log" && (( rc == 0 )) && STATUS[launch]="skipped(no GPU)"
  echo "    launch: ${STATUS[launch]}"
}

# The kernel benchmarks of issue [E] (JMH, one run per class) and torch_bench.py's kernel workloads, in the given
# seconds: 60% JMH, 40% PyTorch. JMH_CLASSES="Class:weight ..." picks the classes.
jmh_phase() {
  local total=$1 jmhdir=/tmp/rlsr-jmh
  rm -rf "$jmhdir"; mkdir -p "$jmhdir"; : >"$OUT/jmh.log"
  if [ -z "$JAVA" ] || [ ! -f "$GPU/bench.jar" ]; then
    echo "jmh skipped"; STATUS[jmh]="skipped"; return
  fi
  local jend=$(( $(date +%s) + total * 60 / 100 )) worst=0 cls cap rc left wsum=0 w before spec
  local classes=${JMH_CLASSES:-"DeviceCopyBench:15 LogprobGatherBench:45 CosineSimilarityBench:25 GroupAdvantagesBench:15"}
  for spec in $classes; do wsum=$(( wsum + ${spec##*:} )); done
  for spec in $classes; do
    cls=${spec%%:*}; w=${spec##*:}
    left=$(( jend - $(date +%s) )); cap=$(( left * w / wsum )); wsum=$(( wsum - w ))
    (( cap < 15 )) && cap=15
    echo "--- $cls (timeout ${cap}s)"
    before=$(wc -l <"$OUT/jmh.log")
    LD_LIBRARY_PATH="$JAVA_LD" timeout -k 10 "$cap" "$JAVA" $JFLAGS -Djmh.ignoreLock=true \
      -Drlsr.bench.out="$OUT/ours.jsonl" -Drlsr.kernel.cache="$KCACHE" -cp "$GPU/bench.jar:$GPU/lib/*" \
      dev.rlsr.bench.gpu.GpuBenchMain "dev.rlsr.bench.gpu.$cls" \
      -f 1 -wi 3 -i 5 -w 400ms -r 400ms -bm avgt -tu us -foe false \
      -rf json -rff "$jmhdir/$cls.json" \
      -jvmArgsAppend "$JFLAGS -Xss8m -Drlsr.bench.out=$OUT/ours.jsonl -Drlsr.kernel.cache=$KCACHE" \
      >>"$OUT/jmh.log" 2>&1
    rc=$?
    # with -foe false JMH exits 0 even when a benchmark threw: count its "<failure>" marker as a failure
    (( rc == 0 )) && tail -n +$(( before + 1 )) "$OUT/jmh.log" | grep -q '<failure>' && rc=3
    (( rc != 0 )) && worst=$rc
    tail -n +$(( before + 1 )) "$OUT/jmh.log" | grep -E '^\[gpu\]|SKIP|Exception|Error|FAIL' | grep -v '^\[gpu\] device 0' \
      | sort -u | head -n 12
    echo "    $cls: $(rc_word $rc)"
  done
  grep -E '^[A-Za-z]+Bench\.[a-z]+ ' "$OUT/jmh.log" | head -n 20
  python3 - "$jmhdir" "$OUT/jmh.json" <<'PY'
import json, glob, sys
runs = []
for p in sorted(glob.glob(sys.argv[1] + "/*.json")):
    try:
        runs += json.load(open(p))
    except Exception as e:
        print("jmh json", p, "unreadable:", e)
json.dump(runs, open(sys.argv[2], "w"), indent=1)
print(f"jmh.json: {len(runs)} results")
PY
  STATUS[jmh]=$(rc_word $worst)
  local tk=$(( START + BUDGET - RESERVE_TABLE - $(date +%s) ))
  if (( tk > 20 )); then
    timeout -k 5 "$tk" python3 "$ROOT/bench/gpu/torch_bench.py" --out "$OUT/torch.json" --budget $(( tk - 10 ))
  else
    echo "torch_bench.py (kernels) skipped: ${tk}s left"
  fi
}

main 2>&1 | tee "$OUT/run.log"
