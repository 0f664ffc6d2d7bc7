#!/usr/bin/env bash
# The device benchmark of issue 14 on a GPU machine, in one run: the synthetic Llama-3.2-1B shape in F16 and Q8_0,
# rows 1K c=1, 1K c=8 and 8K c=8, each dense (F32 KV, no eviction) and DMS (FP8 KV, forced 90% eviction, window 256),
# on the opencl and ptx backends, all through `fastdms bench --json`. It downloads nothing: carry to the GPU machine
#   - a jlink-ed JDK 25 (e.g. jlink --add-modules ALL-MODULE-PATH --output jdk25 from a full JDK 25),
#   - a TornadoVM 5.2.1-jdk25 SDK built with the backends to run (OpenCL + PTX),
#   - this repository's cli/target/fastdms.jar built with the TornadoVM backend (./fastdms tornado-setup),
#   - this script,
# then run
#   scripts/gpu-bench.sh --jdk DIR --sdk DIR --jar FILE [--out DIR] [--backends opencl,ptx] [--types f16,q8_0]
#                        [--rows 1024:1,1024:8,8192:8] [--gen 32] [--device-memory 60GB] [--dry-run]
#                        [--model FILE]   (a GGUF instead of the synthetic model, e.g. a smoke run with stories260K)
# Writes OUT/results.jsonl (one `fastdms bench` JSON object per row, with backend, type and kv added), OUT/logs/*.err,
# OUT/machine.txt (nvidia-smi, lscpu, the SDK's backends) and the synthetic models under OUT/tmp (written once).
# A row that fails is logged and the others still run; the exit code is the number of failed rows (capped at 100).
set -uo pipefail

JDK="" SDK="" JAR="" OUT="gpu-bench-out" BACKENDS="opencl,ptx" TYPES="f16,q8_0" ROWS="1024:1,1024:8,8192:8" GEN=32
DEVICE_MEMORY="60GB" DRY=0 MODEL=""
while [ $# -gt 0 ]; do
  case "$1" in
    --jdk) JDK="$2"; shift 2 ;;
    --sdk) SDK="$2"; shift 2 ;;
    --jar) JAR="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --backends) BACKENDS="$2"; shift 2 ;;
    --types) TYPES="$2"; shift 2 ;;
    --rows) ROWS="$2"; shift 2 ;;
    --gen) GEN="$2"; shift 2 ;;
    --device-memory) DEVICE_MEMORY="$2"; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    --model) MODEL="$2"; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "gpu-bench: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
die() { echo "gpu-bench: $*" >&2; exit 2; }
[ -x "$JDK/bin/java" ] || die "--jdk DIR must hold bin/java (a jlink-ed JDK 25)"
"$JDK/bin/java" -version 2>&1 | grep -q 'version "25' || die "$JDK is not a JDK 25"
[ -f "$SDK/tornado-argfile.template" ] || die "--sdk DIR must be a TornadoVM SDK (no tornado-argfile.template in $SDK)"
[ -z "$MODEL" ] || { [ -f "$MODEL" ] || die "--model $MODEL: no such file"; MODEL="$(cd "$(dirname "$MODEL")" && pwd -P)/$(basename "$MODEL")"; TYPES="file"; }
[ -f "$JAR" ] || die "--jar FILE: the CLI jar built with the TornadoVM backend (cli/target/fastdms.jar)"
SDK="$(cd "$SDK" && pwd -P)"; JAR="$(cd "$(dirname "$JAR")" && pwd -P)/$(basename "$JAR")"
mkdir -p "$OUT/logs" "$OUT/tmp" "$OUT/icd" || die "cannot write $OUT"
OUT="$(cd "$OUT" && pwd -P)"

# TornadoVM's options with the SDK's absolute path (argfiles do not expand variables)
ARGFILE="$OUT/tornado-argfile"
sed "s|\${TORNADOVM_HOME}|$SDK|g" "$SDK/tornado-argfile.template" > "$ARGFILE"

# NVIDIA's OpenCL driver: images often list only PoCL; an ICD directory of our own needs no root
for lib in /usr/local/nvidia/lib64/libnvidia-opencl.so.1 /usr/lib/x86_64-linux-gnu/libnvidia-opencl.so.1 /usr/lib64/libnvidia-opencl.so.1; do
  if [ -f "$lib" ]; then
    echo "$lib" > "$OUT/icd/nvidia.icd"
    for f in /etc/OpenCL/vendors/*.icd; do [ -f "$f" ] && cp "$f" "$OUT/icd/"; done
    export OCL_ICD_VENDORS="$OUT/icd"
    break
  fi
done
# the CUDA driver library for the ptx backend, where the container mounts it outside the default search path
[ -d /usr/local/nvidia/lib64 ] && export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

JAVA=("$JDK/bin/java" @"$ARGFILE" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -XX:+UseParallelGC
      -XX:MaxRAMPercentage=75 -Xss8m -Djava.awt.headless=true -Djava.io.tmpdir="$OUT/tmp" -Dtornado.device.memory="$DEVICE_MEMORY" -Dtornado.tvm.maxbytecodesize=262144 -Dtornado.max.events=1024
      -cp "$JAR" dev.fastdms.cli.Main)

{
  date -u +%FT%TZ
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.memory --format=csv
  command -v lscpu >/dev/null && lscpu | grep -E 'Model name|^CPU\(s\)'
  echo "SDK: $SDK"; echo "JDK: $("$JDK/bin/java" -version 2>&1 | head -1)"
  [ "$DRY" = 1 ] || "${JAVA[@]}" devices 2>&1 | grep -v 'WARNING: Using incubator'
} > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"

# a row fills ctx tokens, then decodes --gen more: dense rows need ctx + gen slots; DMS rows keep about (1 - 0.9) of
# the tokens (x1.3 for the hash's spread) plus the window, one step and a split, at most as many
dms_slots() { local all=$(( $1 + GEN )) s; s=$(( all / 10 * 13 / 10 + 256 + 64 + 256 )); [ "$s" -gt "$all" ] && s=$all; echo "$s"; }

: > "$OUT/results.jsonl"
failed=0
IFS=, read -r -a backends <<< "$BACKENDS"
IFS=, read -r -a types <<< "$TYPES"
IFS=, read -r -a rows <<< "$ROWS"
for backend in "${backends[@]}"; do
  for type in "${types[@]}"; do
    for row in "${rows[@]}"; do
      ctx="${row%%:*}" c="${row##*:}"
      for kv in dense dms; do
        if [ "$kv" = dense ]; then
          kvargs=(--kv-dtype f32 --kv-policy none --kv-slots "$((ctx + GEN))")
        else
          kvargs=(--kv-dtype fp8 --dms-evict-fraction 0.9 --dms-window 256 --kv-slots "$(dms_slots "$ctx")")
        fi
        name="$backend-$type-$ctx-c$c-$kv"
        if [ -n "$MODEL" ]; then what=(-m "$MODEL"); else what=(--synthetic llama-3.2-1b --type "$type"); fi
        cmd=("${JAVA[@]}" bench --backend "$backend" "${what[@]}" --ctx "$ctx" --batch "$c" --gen "$GEN"
             --no-baseline --json --no-progress "${kvargs[@]}")
        echo "== $name" >&2
        if [ "$DRY" = 1 ]; then printf '%q ' "${cmd[@]}"; echo; continue; fi
        if timeout 3600 "${cmd[@]}" > "$OUT/logs/$name.json" 2> "$OUT/logs/$name.err"; then
          # tag each row with what the file name says (no jq on the machine: the object's closing brace is replaced)
          sed "s|}\$|,\"run\":\"$name\",\"weights\":\"$type\",\"kv\":\"$kv\"}|" "$OUT/logs/$name.json" >> "$OUT/results.jsonl"
        else
          failed=$((failed + 1))
          echo "gpu-bench: $name failed: $(grep -v 'WARNING: Using incubator' "$OUT/logs/$name.err" | tail -1)" >&2
        fi
      done
    done
  done
done
echo "gpu-bench: $(wc -l < "$OUT/results.jsonl") rows in $OUT/results.jsonl, $failed failed" >&2
exit $(( failed > 100 ? 100 : failed ))
