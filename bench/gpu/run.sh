#!/usr/bin/env bash
# The GPU check, run ON the GPU machine from the repository root (no JDK, no Maven, no network needed):
#   bash bench/gpu/run.sh            # results under $OUT (default /tmp/rlsr-gpu-out)
# Needs .gpu/ filled by bench/gpu/prepare.sh. Phases, each guarded and time-boxed, none stops the next:
#   env     unpack .gpu/jre.tgz, print the GPU, driver and CUDA versions
#   tests   every JUnit test tagged "gpu" (bindings + kernels) with the console launcher -> $OUT/junit.log
#   jmh     the GPU JMH benchmarks (dev.rlsr.bench.gpu) -> $OUT/jmh.json, $OUT/jmh.log, $OUT/ours.jsonl
#   torch   bench/gpu/torch_bench.py, the same workloads in PyTorch -> $OUT/torch.json
#   table   bench/gpu/table.py merges them -> one table, printed last and written to $OUT/table.md
# $OUT gets 7 files at most (run.log, junit.log, jmh.log, jmh.json, ours.jsonl, torch.json, table.md).
# Budget: RLSR_GPU_BUDGET seconds in all (default 380); each phase also has its own cap (T_TESTS, T_JMH, T_TORCH).
set -uo pipefail
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/../.." || exit 2
ROOT=$(pwd)
OUT=${OUT:-/tmp/rlsr-gpu-out}
mkdir -p "$OUT"
GPU=$ROOT/.gpu
START=$(date +%s)
BUDGET=${RLSR_GPU_BUDGET:-380}
T_TESTS=${T_TESTS:-100}
T_JMH=${T_JMH:-150}
T_TORCH=${T_TORCH:-130}
RESERVE_TABLE=15
JFLAGS="--enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector"
KCACHE=/tmp/rlsr-kernel-cache   # NVRTC cubins, shared by the test JVM and every JMH fork
declare -A STATUS

# seconds a phase may take: its cap, but never more than what is left before the later phases' reserve
allot() { # allot CAP RESERVE_AFTER
  local left=$(( START + BUDGET - $(date +%s) - $2 ))
  (( left < $1 )) && echo $(( left > 5 ? left : 5 )) || echo "$1"
}
rc_word() { case $1 in 0) echo ok ;; 124|137) echo "TIMEOUT" ;; *) echo "FAIL($1)" ;; esac; }
elapsed() { echo $(( $(date +%s) - START )); }

main() {
  echo "=== RLSR GPU check $(date -u +%FT%TZ), repo $(git rev-parse --short HEAD 2>/dev/null || echo '?'), OUT=$OUT"

  # ---------------- env ----------------
  echo "=== [env] t=$(elapsed)s"
  nvidia-smi -L 2>&1 || echo "nvidia-smi -L failed"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem --format=csv 2>&1 || true
  nvidia-smi 2>/dev/null | grep -o 'CUDA Version: [0-9.]*' || echo "CUDA version: not reported by nvidia-smi"
  command -v nvcc >/dev/null && nvcc --version | tail -n 2
  python3 -c 'import torch, triton; print("torch", torch.__version__, "cuda", torch.version.cuda, "triton", triton.__version__)' 2>&1 | tail -n 1
  JAVA=""
  if [ -f "$GPU/jre.tgz" ]; then
    rm -rf /tmp/rlsr-jre && mkdir -p /tmp/rlsr-jre && tar xzf "$GPU/jre.tgz" -C /tmp/rlsr-jre \
      && JAVA=/tmp/rlsr-jre/jre/bin/java && "$JAVA" -version 2>&1 | head -n 1 || JAVA=""
  else
    echo "no $GPU/jre.tgz: run bench/gpu/prepare.sh first"
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

  # ---------------- (a) gpu-tagged tests ----------------
  echo "=== [tests] t=$(elapsed)s"
  local t; t=$(allot "$T_TESTS" $(( 40 + 40 + RESERVE_TABLE )))
  local junit; junit=$(ls "$GPU"/junit/junit-platform-console-standalone-*.jar 2>/dev/null | head -n 1)
  if [ -z "$JAVA" ] || [ -z "$junit" ] || [ ! -d "$GPU/test-classes" ]; then
    echo "tests skipped: java='$JAVA' junit='$junit' test-classes: $(ls "$GPU/test-classes" 2>/dev/null | tr '\n' ' ')"
    STATUS[tests]="skipped"
  else
    local cp="$junit" scan=() d
    for d in "$GPU"/test-classes/*/; do cp="$cp:${d%/}"; scan+=("--scan-class-path=${d%/}"); done
    cp="$cp:$GPU/lib/*"
    echo "scanning ${scan[*]#--scan-class-path=} (timeout ${t}s); tree in $OUT/junit.log"
    # rlsr.gpu.required: a GPU test that finds no device or CUDA library fails here instead of skipping
    LD_LIBRARY_PATH="$JAVA_LD" timeout -k 10 "$t" "$JAVA" $JFLAGS -Xss8m -Drlsr.kernel.cache="$KCACHE" \
      -Drlsr.gpu.required=true -cp "$cp" \
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

  # ---------------- (b) GPU JMH benchmarks ----------------
  echo "=== [jmh] t=$(elapsed)s"
  local tj; tj=$(allot "$T_JMH" $(( 60 + RESERVE_TABLE )))
  local jmhdir=/tmp/rlsr-jmh; rm -rf "$jmhdir"; mkdir -p "$jmhdir"
  : >"$OUT/ours.jsonl"; : >"$OUT/jmh.log"
  if [ -z "$JAVA" ] || [ ! -f "$GPU/benchmarks.jar" ]; then
    echo "jmh skipped: java='$JAVA', $GPU/benchmarks.jar $( [ -f "$GPU/benchmarks.jar" ] && echo present || echo missing)"
    STATUS[jmh]="skipped"
  else
    local jend=$(( $(date +%s) + tj )) worst=0 cls cap rc left wsum=100 w before
    # one JMH run per class, so that a hang costs only its own cap: each class gets its weight's share of the
    # phase's remaining time, so what an early class leaves unused goes to the later ones
    for spec in DeviceCopyBench:15 LogprobGatherBench:45 CosineSimilarityBench:25 GroupAdvantagesBench:15; do
      cls=${spec%%:*}; w=${spec##*:}
      left=$(( jend - $(date +%s) )); cap=$(( left * w / wsum )); wsum=$(( wsum - w ))
      (( cap < 15 )) && cap=15
      echo "--- $cls (timeout ${cap}s)"
      before=$(wc -l <"$OUT/jmh.log")
      LD_LIBRARY_PATH="$JAVA_LD" timeout -k 10 "$cap" "$JAVA" $JFLAGS -Djmh.ignoreLock=true \
        -Drlsr.bench.out="$OUT/ours.jsonl" -Drlsr.kernel.cache="$KCACHE" -cp "$GPU/benchmarks.jar" \
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
      if tail -n +$(( before + 1 )) "$OUT/jmh.log" | grep -q '^SKIP GPU benchmarks'; then
        worst=skip; break
      fi
    done
    # JMH's own summary lines (one per benchmark and parameter)
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
    [ "$worst" = skip ] && STATUS[jmh]="skipped(no GPU)" || STATUS[jmh]=$(rc_word $worst)
  fi

  # ---------------- (c) PyTorch side by side ----------------
  echo "=== [torch] t=$(elapsed)s"
  local tt; tt=$(allot "$T_TORCH" "$RESERVE_TABLE")
  timeout -k 5 "$tt" python3 "$ROOT/bench/gpu/torch_bench.py" --out "$OUT/torch.json" --budget $(( tt - 10 ))
  STATUS[torch]=$(rc_word $?)

  # ---------------- (d) the table ----------------
  echo "=== [table] t=$(elapsed)s"
  local st="env=${STATUS[env]} tests=${STATUS[tests]} jmh=${STATUS[jmh]} torch=${STATUS[torch]} total=$(elapsed)s"
  timeout -k 5 "$RESERVE_TABLE" python3 "$ROOT/bench/gpu/table.py" --ours "$OUT/ours.jsonl" --jmh "$OUT/jmh.json" \
    --torch "$OUT/torch.json" --out "$OUT/table.md" --status "$st" \
    || echo "table.py failed; $st"
}

main 2>&1 | tee "$OUT/run.log"
