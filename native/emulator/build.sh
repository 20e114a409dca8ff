#!/usr/bin/env bash
# Builds the CUDA emulator: DIR/librlsr_cuda_emulator.so (.dylib on macOS) from native/emulator/src and every kernel
# file (native/cuda/*.cu, plus the emulator's test kernels), each kernel file compiled as C++ with the SIMT shim.
#
#   native/emulator/build.sh DIR                 # e.g. native/target/emulator (what ./mvnw verify builds)
#   native/emulator/build.sh DIR --if-compiler   # Maven: without a C++ compiler, say so and exit 0
#
# Nothing in the emulator names a kernel: every `extern "C" __global__` kernel is found by scanning the sources, and
# a generated registry unpacks cuLaunchKernel's parameters by the kernel's own parameter types. A new .cu file needs no
# change here. Objects are cached by a hash of their inputs, so an unchanged tree rebuilds nothing.
#
# Environment: CXX (default g++, else c++, else clang++), RLSR_EMU_JOBS (parallel compiles, default: CPU count),
# RLSR_EMU_DEBUG=1 (-O0 -g, for stepping through a kernel in gdb), RLSR_EMU_KERNEL_DIRS (extra kernel folders,
# colon-separated).
set -euo pipefail

if [ $# -lt 1 ] || [ "${1:0:1}" = "-" ]; then
  echo "usage: native/emulator/build.sh DIR [--if-compiler]" >&2
  exit 2
fi
out_arg=$1
if_compiler=0
[ "${2:-}" = "--if-compiler" ] && if_compiler=1

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
mkdir -p "$out_arg"
out=$(cd "$out_arg" && pwd)
cd "$root"   # every path below is relative to the repository root (also what #line and .incbin see)

cxx=${CXX:-}
if [ -z "$cxx" ]; then
  for c in g++ c++ clang++; do
    if command -v "$c" >/dev/null 2>&1; then cxx=$c; break; fi
  done
fi
if [ -z "$cxx" ] || ! command -v "$cxx" >/dev/null 2>&1; then
  msg="no C++ compiler (g++, c++ or clang++; or set CXX): the CUDA emulator is not built, GPU tests will skip"
  if [ $if_compiler = 1 ]; then echo "[emulator] $msg" >&2; rm -f "$out"/librlsr_cuda_emulator.*; exit 0; fi
  echo "build.sh: $msg" >&2
  exit 1
fi

case "$(uname -s)" in
  Darwin) lib=librlsr_cuda_emulator.dylib; shared=(-dynamiclib -undefined error) ;;
  *)      lib=librlsr_cuda_emulator.so;    shared=(-shared -Wl,-z,defs -Wl,--version-script=native/emulator/exports.map) ;;
esac

kernel_dirs=(native/cuda)
[ -d bindings/src/test/resources/rlsr/cuda-test ] && kernel_dirs+=(bindings/src/test/resources/rlsr/cuda-test)
if [ -n "${RLSR_EMU_KERNEL_DIRS:-}" ]; then
  IFS=: read -r -a extra <<<"$RLSR_EMU_KERNEL_DIRS"
  kernel_dirs+=("${extra[@]}")
fi

build=$out/build
gen=$build/gen
obj=$build/obj
mkdir -p "$gen" "$obj"

start=$(date +%s)
if command -v sha256sum >/dev/null 2>&1; then hash_cmd=(sha256sum)
elif command -v shasum >/dev/null 2>&1; then hash_cmd=(shasum -a 256)
else hash_cmd=(cksum); fi
hash_of() { "${hash_cmd[@]}" | cut -c1-16; }

opt=(-O2)
[ "${RLSR_EMU_DEBUG:-0}" = 1 ] && opt=(-O0 -g)
base=(-std=c++20 -fPIC -fvisibility=hidden -fvisibility-inlines-hidden -pthread "${opt[@]}" -Wall
      -Wno-unknown-pragmas)
# FMA contraction as nvcc does it (and fmaf as one instruction), where this CPU has FMA
arch=()
if [ "$(uname -m)" = x86_64 ]; then
  native_macros=$(echo | "$cxx" -march=native -dM -E -x c++ - 2>/dev/null || true)  # (grep -q on a pipe: SIGPIPE)
  case "$native_macros" in *__FMA__*) arch=(-mfma) ;; esac
fi
inc=(-Inative/emulator/include)
kinc=(-I"$gen" "${inc[@]}")
for d in "${kernel_dirs[@]}"; do kinc+=(-I"$d"); done
# kernel code: no strict aliasing (kernels reinterpret rows as uint4 like CUDA code does), no errno from math
kflags=("${base[@]}" "${arch[@]}" -fno-strict-aliasing -fno-math-errno -Wno-unused-function -Wno-unused-variable
        -Wno-unused-but-set-variable -Wno-unused-local-typedefs -include rlsr_emu_shim.h "${kinc[@]}")
rflags=("${base[@]}" "${arch[@]}" -fno-strict-aliasing "${inc[@]}")
compiler_id=$("$cxx" --version 2>/dev/null | head -n 1)

# ---- the kernel sources: every .cu and .cuh of the kernel folders ---------------------------------------------------
cus=(); cuhs=()
for d in "${kernel_dirs[@]}"; do
  [ -d "$d" ] || { echo "build.sh: kernel folder $d does not exist" >&2; exit 1; }
  for f in "$d"/*.cu "$d"/*.cuh; do
    [ -e "$f" ] || continue
    case "$f" in *.cu) cus+=("$f") ;; *) cuhs+=("$f") ;; esac
  done
done
dups=$(for f in "${cus[@]}" "${cuhs[@]}"; do basename "$f"; done | sort | uniq -d)
if [ -n "$dups" ]; then
  echo "build.sh: kernel files with the same name in two folders ($(echo $dups)); NVRTC programs are found by name" >&2
  exit 1
fi

# Copies a kernel source into gen/ as the shim needs it: `extern "C"` dropped (each file lives in its own namespace,
# so kernel and helper names never clash), `extern __shared__ T name[];` turned into a pointer to the launch's
# dynamic shared memory. Lines keep their numbers (#line), so errors and gdb point at the original file.
transform() { # SRC DST
  local tmp="$2.tmp"
  {
    printf '#line 1 "%s"\n' "$1"
    sed -E \
      -e 's/extern[[:space:]]*"C"[[:space:]]*//g' \
      -e 's/extern[[:space:]]+__shared__[[:space:]]+(__align__\([^)]*\)[[:space:]]+)?([A-Za-z_][A-Za-z0-9_ ]*[A-Za-z0-9_])[[:space:]]+(__align__\([^)]*\)[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*\[[[:space:]]*\][[:space:]]*;/\2* const \4 = reinterpret_cast<\2*>(::rlsr_emu::g_dynamic_smem);/g' \
      "$1"
  } >"$tmp"
  if [ -f "$2" ] && cmp -s "$tmp" "$2"; then rm -f "$tmp"; else mv "$tmp" "$2"; fi
}

# Removes comments (keeps strings), so the kernel scan below sees only code.
strip_comments() {
  awk '
    BEGIN { state = 0 }   # 0 code, 1 block comment
    {
      line = $0; outl = ""; i = 1; n = length(line); instr = 0
      while (i <= n) {
        c = substr(line, i, 1); c2 = substr(line, i, 2)
        if (state == 1) { if (c2 == "*/") { state = 0; i += 2; outl = outl " " } else { i++ }; continue }
        if (instr) { outl = outl c; if (c == "\\") { outl = outl substr(line, i + 1, 1); i += 2; continue }
                     if (c == instr) instr = 0; i++; continue }
        if (c2 == "//") break
        if (c2 == "/*") { state = 1; i += 2; continue }
        if (c == "\"" || c == "'\''") instr = c
        outl = outl c; i++
      }
      print outl
    }' "$1"
}

# Prints "name<TAB>launch-bounds-arguments" for every extern "C" __global__ kernel defined or declared in a .cu file.
scan_kernels() {
  strip_comments "$1" | tr '\n\t\r' '   ' \
    | grep -oE 'extern[[:space:]]*"C"([[:space:]]+(__global__|void|__launch_bounds__[[:space:]]*\(([^()]|\([^()]*\))*\)))+[[:space:]]+[A-Za-z_][A-Za-z0-9_]*[[:space:]]*\(' \
    | grep -E '__global__' \
    | while IFS= read -r m; do
        name=$(printf '%s\n' "$m" | sed -E 's/.*[[:space:]]([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*\($/\1/')
        bounds=$(printf '%s\n' "$m" | sed -nE 's/.*__launch_bounds__[[:space:]]*\((.*)\)[[:space:]]+(void[[:space:]]+)?[A-Za-z_][A-Za-z0-9_]*[[:space:]]*\($/\1/p')
        printf '%s\t%s\n' "$name" "$bounds"
      done | awk -F'\t' '!seen[$1]++'
}

for f in "${cuhs[@]}" "${cus[@]}"; do transform "$f" "$gen/$(basename "$f")"; done

# ---- one translation unit per kernel file ---------------------------------------------------------------------------
listing=""
total_kernels=0
tus=()
for f in "${cus[@]}"; do
  n=$(basename "$f" .cu)
  ns=rlsr_kernels_$(printf '%s' "$n" | tr -c 'A-Za-z0-9_' '_')
  tu=$gen/$n.kernels.cpp
  entries=""
  count=0
  names=""
  while IFS=$'\t' read -r kname kbounds; do
    [ -n "$kname" ] || continue
    if [ -n "$kbounds" ]; then b="RLSR_EMU_BOUNDS($kbounds)"; else b="1024"; fi
    entries+="    ::rlsr_emu::KernelThunk<&$kname>::desc(\"$kname\", $b),"$'\n'
    count=$((count + 1))
    names+=" $kname"
  done < <(scan_kernels "$f")
  total_kernels=$((total_kernels + count))
  listing+="$n.cu:$names"$'\n'
  if [ $count -gt 0 ]; then
    table="const ::rlsr_emu::KernelDesc rlsr_emu_kernels[] = {
$entries};"
    ref=rlsr_emu_kernels
  else
    table="// no extern \"C\" __global__ kernels in this file"
    ref=nullptr
  fi
  cat >"$tu.tmp" <<EOF
// Generated by native/emulator/build.sh from $f: do not edit.
#include "rlsr_emu_registry.h"
namespace $ns {
namespace {
#include "$n.cu"
$table
::rlsr_emu::FileDesc rlsr_emu_file{"$n.cu", $ref, $count, nullptr};
struct Registrar {
    Registrar() { ::rlsr_emu::register_file(&rlsr_emu_file); }
} rlsr_emu_registrar;
}  // namespace
}  // namespace $ns
EOF
  if [ -f "$tu" ] && cmp -s "$tu.tmp" "$tu"; then rm -f "$tu.tmp"; else mv "$tu.tmp" "$tu"; fi
  tus+=("k:$tu")
done
printf '%s' "$listing" >"$out/kernels.txt"

# ---- the sources themselves, for the NVRTC text check ------------------------------------------------------------
src_tu=$gen/sources.cpp
{
  echo "// Generated by native/emulator/build.sh: the kernel sources this emulator was built from, byte for byte."
  echo '#include "emu.h"'
  i=0
  for f in "${cus[@]}" "${cuhs[@]}"; do
    if [ "$(uname -s)" = Darwin ]; then
      printf 'asm(".const\\n.private_extern _rlsr_emu_src_%d\\n_rlsr_emu_src_%d:\\n.incbin \\"%s\\"\\n.private_extern _rlsr_emu_src_%d_end\\n_rlsr_emu_src_%d_end:\\n.byte 0\\n.text\\n");\n' $i $i "$f" $i $i
    else
      printf 'asm(".section .rodata\\n.globl rlsr_emu_src_%d\\n.hidden rlsr_emu_src_%d\\nrlsr_emu_src_%d:\\n.incbin \\"%s\\"\\n.globl rlsr_emu_src_%d_end\\n.hidden rlsr_emu_src_%d_end\\nrlsr_emu_src_%d_end:\\n.byte 0\\n.previous\\n");\n' $i $i $i "$f" $i $i $i
    fi
    printf 'extern "C" const char rlsr_emu_src_%d[], rlsr_emu_src_%d_end[];\n' $i $i
    i=$((i + 1))
  done
  echo "namespace rlsr_emu {"
  echo "extern const SourceText kSources[] = {"
  i=0
  for f in "${cus[@]}" "${cuhs[@]}"; do
    printf '    {"%s", rlsr_emu_src_%d, rlsr_emu_src_%d_end},\n' "$(basename "$f")" $i $i
    i=$((i + 1))
  done
  [ $i -eq 0 ] && echo '    {"", nullptr, nullptr},'
  echo "};"
  echo "extern const int kSourceCount = $i;"
  echo "}  // namespace rlsr_emu"
} >"$src_tu.tmp"
if [ -f "$src_tu" ] && cmp -s "$src_tu.tmp" "$src_tu"; then rm -f "$src_tu.tmp"; else mv "$src_tu.tmp" "$src_tu"; fi
tus+=("s:$src_tu")
for f in native/emulator/src/*.cpp; do tus+=("r:$f"); done

# ---- compile (in parallel, cached by a hash of everything that goes into each object) ------------------------------
shim_hash=$(cat native/emulator/include/*.h | hash_of)
cuh_hash=$( (for f in "${cuhs[@]}"; do cat "$gen/$(basename "$f")"; done) | hash_of)
rt_hash=$(cat native/emulator/src/*.h native/emulator/include/rlsr_emu_registry.h | hash_of)
srcs_hash=$( (for f in "${cus[@]}" "${cuhs[@]}"; do cat "$f"; done) | hash_of)
jobs_max=${RLSR_EMU_JOBS:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)}
objects=()
pending=()
pending_obj=()
rebuilt=0
failed=0

wait_one() {
  local pid=${pending[0]} o=${pending_obj[0]}
  pending=("${pending[@]:1}")
  pending_obj=("${pending_obj[@]:1}")
  if ! wait "$pid"; then
    failed=1
    echo "---- compiling ${o%.o} failed:" >&2
    cat "$o.log" >&2
  fi
}

for spec in "${tus[@]}"; do
  kind=${spec%%:*}
  src=${spec#*:}
  case $kind in
    k) flags=("${kflags[@]}"); key=$( (echo "$compiler_id ${flags[*]}"; cat "$src" "$gen/$(basename "$src" .kernels.cpp).cu"; echo "$shim_hash $cuh_hash") | hash_of) ;;
    s) flags=("${rflags[@]}" -Inative/emulator/src); key=$( (echo "$compiler_id ${flags[*]}"; cat "$src"; echo "$srcs_hash $rt_hash") | hash_of) ;;
    r) flags=("${rflags[@]}"); key=$( (echo "$compiler_id ${flags[*]}"; cat "$src"; echo "$rt_hash") | hash_of) ;;
  esac
  o=$obj/$(basename "$src" .cpp)-$key.o
  objects+=("$o")
  [ -f "$o" ] && continue
  rebuilt=$((rebuilt + 1))
  ( "$cxx" "${flags[@]}" -c "$src" -o "$o.tmp" >"$o.log" 2>&1 && mv "$o.tmp" "$o" ) &
  pending+=($!)
  pending_obj+=("$o")
  if [ ${#pending[@]} -ge "$jobs_max" ]; then wait_one; fi
done
while [ ${#pending[@]} -gt 0 ]; do wait_one; done
if [ $failed = 1 ]; then
  echo "build.sh: the CUDA emulator did not build. A kernel file that fails here does not compile as C++ under the" >&2
  echo "SIMT shim: see native/README.md, 'The CUDA subset a kernel may use'." >&2
  exit 1
fi

# ---- link (only when an object changed), then swap the library in atomically ---------------------------------------
stamp=$build/link.stamp
want=$(printf '%s\n' "${objects[@]}" | hash_of)
if [ ! -f "$out/$lib" ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$cxx" "${shared[@]}" -pthread -o "$out/.$lib.tmp" "${objects[@]}" -ldl
  mv "$out/.$lib.tmp" "$out/$lib"
  echo "$want" >"$stamp"
  linked=linked
else
  linked="up to date"
fi
# stale objects of earlier builds
for o in "$obj"/*.o "$obj"/*.o.log; do
  [ -e "$o" ] || continue
  keep=0
  for x in "${objects[@]}"; do [ "${o%.log}" = "$x" ] && keep=1 && break; done
  [ $keep = 1 ] || rm -f "$o"
done
echo "[emulator] ${#cus[@]} kernel files, $total_kernels kernels; $rebuilt of ${#objects[@]} objects compiled," \
     "$linked in $(( $(date +%s) - start ))s -> $out/$lib"
