#!/usr/bin/env bash
# Prepares the GPU check HERE (JDK 25 + Maven + network), for bench/gpu/run.sh on a GPU machine without them.
#   bash bench/gpu/prepare.sh          # JAVA_HOME=... picks the JDK 25 (default /usr/lib/jvm/temurin-25-jdk-amd64)
# Builds the project, then refills the git-ignored .gpu/ at the repository root:
#   .gpu/jre.tgz           a jlinked Java 25 runtime (bench/gpu/make-jre.sh)
#   .gpu/benchmarks.jar    the self-contained JMH jar (bench/target/benchmarks.jar)
#   .gpu/test-classes/M/   test classes + test resources of the modules with GPU tests (bindings, kernels)
#   .gpu/lib/              their runtime class path: the modules' jars, rlsr-native (the .cu sources), jcuda + natives
#   .gpu/junit/            junit-platform-console-standalone (the version pinned in the root pom)
# and checks that the whole folder stays under 40 MiB (the GPU call carries at most 64 MiB with the tree).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
# the jlink script: bench/gpu/make-jre.sh, or SHARED_DIR/tools/make-jre.sh when SHARED_DIR is set
MAKE_JRE=$ROOT/bench/gpu/make-jre.sh
[ -n "${SHARED_DIR:-}" ] && MAKE_JRE=$SHARED_DIR/tools/make-jre.sh
GPU=$ROOT/.gpu
LIMIT_MIB=40
TEST_MODULES=(bindings kernels)
step() { echo "=== [prepare] $*"; }

[ -x "$JAVA_HOME/bin/java" ] || { echo "JAVA_HOME=$JAVA_HOME has no bin/java: set JAVA_HOME to a JDK 25" >&2; exit 1; }
[ -f "$MAKE_JRE" ] || { echo "no $MAKE_JRE (SHARED_DIR=${SHARED_DIR:-unset})" >&2; exit 1; }

step "build: ./mvnw -B -q -DskipTests package (compiles the tests too; no javadoc or sources jars)"
rm -rf "$GPU/jmh-jars"
# the same reactor also copies JMH and its two dependencies (versions as resolved for the bench module)
JMH_JARS=(dependency:copy-dependencies -DincludeArtifactIds=jmh-core,jopt-simple,commons-math3
          -DoutputDirectory="$GPU/jmh-jars")
NO_DOCS=(-Dmaven.javadoc.skip=true -Dmaven.source.skip=true)
if ! ./mvnw -B -q -DskipTests "${NO_DOCS[@]}" package "${JMH_JARS[@]}"; then
  # a module's tests that do not compile must not block the GPU check: the GPU tests' own modules are built
  # (tests included) below, and fail there if they are the broken ones
  echo "WARNING: the full build failed (output above); retrying with -Dmaven.test.skip=true for all modules"
  ./mvnw -B -q -Dmaven.test.skip=true "${NO_DOCS[@]}" package "${JMH_JARS[@]}"
fi

step "runtime class path of the GPU tests"
rm -rf "$GPU/lib" "$GPU/test-classes" "$GPU/junit" "$GPU/benchmarks.jar"
mkdir -p "$GPU/lib" "$GPU/test-classes" "$GPU/junit"
# copy-dependencies in the same reactor as package, so sibling modules resolve to their fresh jars; JUnit itself
# comes from the console-standalone jar below, so its pieces are left out here
pl=$(IFS=,; echo "${TEST_MODULES[*]}")
./mvnw -B -q -pl "$pl" -am -DskipTests "${NO_DOCS[@]}" package dependency:copy-dependencies \
  -DincludeScope=test -DoutputDirectory="$GPU/lib" \
  -DexcludeGroupIds=org.junit.jupiter,org.junit.platform,org.opentest4j,org.apiguardian
for m in "${TEST_MODULES[@]}"; do
  jar=$(ls "$m"/target/rlsr-"$m"-*.jar 2>/dev/null | grep -vE -- '-(tests|sources|javadoc)\.jar$' | head -n 1 || true)
  [ -n "$jar" ] && cp "$jar" "$GPU/lib/" || echo "warning: no jar for module $m"
  if [ -d "$m/target/test-classes" ]; then
    cp -r "$m/target/test-classes" "$GPU/test-classes/$m"
  else
    echo "warning: $m has no target/test-classes"
  fi
done

# JCuda's natives jar carries a 24 MB static nvPTXCompiler that the tests never load (they use the driver API):
# drop it so .gpu/ fits its budget
for nj in "$GPU"/lib/jcuda-natives-*.jar; do
  [ -f "$nj" ] || continue
  python3 - "$nj" <<'PY'
import os, sys, zipfile
src = sys.argv[1]; tmp = src + ".tmp"
with zipfile.ZipFile(src) as zin, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zout:
    for item in zin.infolist():
        if "libJNvPTXCompiler" not in item.filename:
            zout.writestr(item, zin.read(item.filename))
os.replace(tmp, src)
PY
done

step "junit-platform-console-standalone"
jpv=$(sed -n 's:.*<junit.platform.version>\(.*\)</junit.platform.version>.*:\1:p' pom.xml | head -n 1)
./mvnw -B -q -N dependency:copy \
  -Dartifact="org.junit.platform:junit-platform-console-standalone:$jpv" -DoutputDirectory="$GPU/junit"

step "benchmarks.jar (GPU benchmarks only, self-contained)"
# Not bench/target/benchmarks.jar itself: it shades the whole trainer (ONNX runtime, tokenizer natives, an embedding
# model: ~200 MB), which the GPU benchmarks never load. This jar holds JMH and its two dependencies, the bindings,
# the kernels with their .cu sources, the GPU benchmarks and their lines of JMH's BenchmarkList (java -jar works).
classes=bench/target/classes
[ -f "$classes/META-INF/BenchmarkList" ] || { echo "no $classes/META-INF/BenchmarkList: bench did not build" >&2; exit 1; }
sub=$(mktemp -d); trap 'rm -rf "$sub"' EXIT
for j in "$GPU"/jmh-jars/*.jar "$GPU"/lib/rlsr-bindings-*.jar "$GPU"/lib/rlsr-kernels-*.jar "$GPU"/lib/rlsr-native-*.jar; do
  unzip -qo "$j" -d "$sub"
done
rm -f "$sub"/META-INF/MANIFEST.MF "$sub"/META-INF/*.SF "$sub"/META-INF/*.RSA "$sub"/META-INF/*.DSA "$sub"/module-info.class
mkdir -p "$sub/dev/rlsr/bench"
cp -r "$classes/dev/rlsr/bench/gpu" "$sub/dev/rlsr/bench/"
grep -F ' dev.rlsr.bench.gpu.' "$classes/META-INF/BenchmarkList" >"$sub/META-INF/BenchmarkList" || true
[ -f "$classes/META-INF/CompilerHints" ] && cp "$classes/META-INF/CompilerHints" "$sub/META-INF/"
nb=$(grep -c . "$sub/META-INF/BenchmarkList" || true)
[ "$nb" -gt 0 ] || { echo "no dev.rlsr.bench.gpu benchmarks in $classes/META-INF/BenchmarkList" >&2; exit 1; }
rm -f "$GPU/benchmarks.jar"
"$JAVA_HOME/bin/jar" --create --file "$GPU/benchmarks.jar" --main-class org.openjdk.jmh.Main -C "$sub" .
echo "benchmarks.jar: $nb GPU benchmark methods, $(du -h "$GPU/benchmarks.jar" | cut -f1)"
rm -rf "$GPU/jmh-jars"

step "jre.tgz (jlink)"
if [ -f "$GPU/jre.tgz" ] && [ "$GPU/jre.tgz" -nt "$MAKE_JRE" ] && [ -z "${REBUILD_JRE:-}" ]; then
  echo "kept $GPU/jre.tgz (REBUILD_JRE=1 rebuilds it)"
else
  bash "$MAKE_JRE" "$GPU/jre.tgz"
fi

{
  echo "prepared $(date -u +%FT%TZ) from $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (+ local changes)')"
  echo "junit-platform-console-standalone $jpv"
  (cd "$GPU" && ls lib junit)
} >"$GPU/MANIFEST.txt"

step "contents"
(cd "$GPU" && du -sh jre.tgz benchmarks.jar lib junit test-classes 2>/dev/null)
ls "$GPU/lib"
bytes=$(du -sb "$GPU" | cut -f1)
mib=$(( (bytes + 1048575) / 1048576 ))
echo "=== [prepare] .gpu/ total: $mib MiB ($bytes bytes), limit $LIMIT_MIB MiB"
if (( bytes >= LIMIT_MIB * 1048576 )); then
  echo "ERROR: .gpu/ is over $LIMIT_MIB MiB" >&2
  exit 1
fi
git check-ignore -q .gpu/ || echo "WARNING: .gpu/ is not git-ignored"
echo "ready: copy bench/gpu/ and .gpu/ to the GPU machine (see bench/gpu/README.md), run  bash bench/gpu/run.sh  there"
