#!/usr/bin/env bash
# CPU decode speed, side by side: fastdms, llama.cpp (through the npm package node-llama-cpp, when installed) and
# llama3.java (when its source is given), on the same GGUF files, runs alternating, min-max over RUNS runs.
#
#   scripts/bench-cpu.sh MODEL.gguf [MODEL.gguf ...]
#
# Environment:
#   N=128            tokens decoded per run (greedy)
#   RUNS=3           runs per contender and model
#   THREADS=nproc    threads for every contender
#   PROMPT_TOKENS=0  also time prefill of a prompt of about this many tokens (0: a short prompt, decode only), and
#                    fastdms once warm (fastdms_warm: the second of two prefill+decode rows in one process)
#   LLAMA_CPP_DIR    a folder where `npm install node-llama-cpp@3.21.1` was run (skipped when unset)
#   LLAMA3_JAVA      path to llama3.java's Llama3.java, compiled on the fly (skipped when unset)
# Make test files with: ./fastdms synth --shape llama-3.2-1b --type q8_0|q4_0|q4_k|q4_k_m --tokenizer-json T -o F
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/jdk25.sh
JAVA_HOME="$(find_jdk25)" || { echo "bench-cpu: JDK 25 not found" >&2; exit 2; }
N=${N:-128} RUNS=${RUNS:-3} THREADS=${THREADS:-$(nproc)} PROMPT_TOKENS=${PROMPT_TOKENS:-0}
[ $# -ge 1 ] || { echo "usage: scripts/bench-cpu.sh MODEL.gguf [MODEL.gguf ...]" >&2; exit 2; }
for m in "$@"; do [ -f "$m" ] || { echo "bench-cpu: no such file: $m" >&2; exit 2; }; done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

prompt="Once upon a time"
if [ "$PROMPT_TOKENS" -gt 0 ]; then # ~4 characters a token of English text
  prompt=$(head -c $((PROMPT_TOKENS * 4)) ../shared/assets/eval/wikitext-2-raw/wiki.test.raw 2>/dev/null | tr -d '\r' || true)
  [ -n "$prompt" ] || prompt=$(printf 'the quick brown fox jumps over the lazy dog %.0s' $(seq 1 $((PROMPT_TOKENS / 9 + 1))))
fi
printf '%s' "$prompt" >"$work/prompt.txt"

[ -f cli/target/fastdms.jar ] || ./mvnw -q -B -DskipTests package

# each contender prints one line: "<prefill tok/s> <decode tok/s>"
run_fastdms() {
  ./fastdms generate -m "$1" --prompt-file "$work/prompt.txt" -n "$N" --threads "$THREADS" --json 2>/dev/null |
    python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["prefill_tokens_per_s"], j["decode_tokens_per_s"])'
}

# The same engine once its JIT has compiled the kernels: `fastdms bench` prefills PROMPT_TOKENS random tokens and
# decodes N twice in one process, and the second row is the warm one (the first is the fresh process, as above).
run_fastdms_warm() {
  ./fastdms bench -m "$1" --ctx "$PROMPT_TOKENS,$PROMPT_TOKENS" --gen "$N" --batch 1 --no-baseline --threads "$THREADS" --json 2>/dev/null |
    tail -1 | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["prefill_tokens_per_s"], j["decode_tokens_per_s"])'
}

have_llama_cpp=0
if [ -n "${LLAMA_CPP_DIR:-}" ] && [ -d "$LLAMA_CPP_DIR/node_modules/node-llama-cpp" ]; then
  have_llama_cpp=1
  cat >"$LLAMA_CPP_DIR/.fastdms-bench.mjs" <<'EOF'
import {getLlama} from "node-llama-cpp";
import {readFileSync} from "node:fs";
const [modelPath, n, threads, promptFile] = process.argv.slice(2);
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath});
const context = await model.createContext({contextSize: 4096, threads: Number(threads), batchSize: 512});
const seq = context.getSequence();
const tokens = model.tokenize(readFileSync(promptFile, "utf8"));
let count = 0, t0 = performance.now(), tFirst = 0;
for await (const t of seq.evaluate(tokens, {temperature: 0})) {
  if (count === 0) tFirst = performance.now();
  if (++count >= Number(n)) break;
}
const tEnd = performance.now();
console.log((tokens.length / ((tFirst - t0) / 1000)).toFixed(2), ((count - 1) / ((tEnd - tFirst) / 1000)).toFixed(2));
await context.dispose(); await model.dispose();
EOF
fi
run_llama_cpp() {
  (cd "$LLAMA_CPP_DIR" && node .fastdms-bench.mjs "$1" "$N" "$THREADS" "$work/prompt.txt" 2>/dev/null) | tail -1
}

have_llama3=0
if [ -n "${LLAMA3_JAVA:-}" ] && [ -f "$LLAMA3_JAVA" ]; then
  mkdir -p "$work/llama3"
  "$JAVA_HOME/bin/javac" -nowarn --enable-preview --release 25 --add-modules jdk.incubator.vector -d "$work/llama3" "$LLAMA3_JAVA" 2>/dev/null && have_llama3=1
fi
run_llama3() {
  "$JAVA_HOME/bin/java" --enable-preview --add-modules jdk.incubator.vector -Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0 \
    -Djava.util.concurrent.ForkJoinPool.common.parallelism="$THREADS" -cp "$work/llama3" com.llama4j.Llama3 \
    -m "$1" -p "$(cat "$work/prompt.txt")" -n $((N + PROMPT_TOKENS + 64)) --temperature 0 --stream false 2>&1 >/dev/null |
    sed -n 's/.*prompt: \([0-9.]*\) tokens\/s.*generation: \([0-9.]*\) tokens\/s.*/\1 \2/p' | tail -1
}

contenders=(fastdms)
[ "$PROMPT_TOKENS" -gt 0 ] && contenders+=(fastdms_warm)
[ $have_llama_cpp = 1 ] && contenders+=(llama_cpp)
[ $have_llama3 = 1 ] && contenders+=(llama3)
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; threads $THREADS; $N tokens; $RUNS runs each, alternating"

for m in "$@"; do
  : >"$work/res"
  for r in $(seq 1 "$RUNS"); do
    for c in "${contenders[@]}"; do
      out=$("run_$c" "$m" || true)
      [ -n "$out" ] && echo "$c $out" >>"$work/res" || echo "bench-cpu: $c failed on $m (run $r)" >&2
    done
  done
  python3 - "$m" "$work/res" <<'EOF'
import sys, collections
model, res = sys.argv[1], sys.argv[2]
d = collections.defaultdict(lambda: ([], []))
for line in open(res):
    c, p, t = line.split()
    d[c][0].append(float(p)); d[c][1].append(float(t))
def rng(v): return f"{min(v):.1f}-{max(v):.1f}"
print(f"\n{model}")
print(f"{'contender':<13} {'decode tok/s':>14} {'prefill tok/s':>14} {'decode vs fastdms (median)':>27} {'prefill / decode (medians)':>27}")
med = lambda v: sorted(v)[len(v) // 2]
base = med(d["fastdms"][1]) if d["fastdms"][1] else float('nan')
for c, (p, t) in d.items():
    vs = ('fastdms / ' + c + ' = %.2fx' % (base / med(t))) if not c.startswith('fastdms') else ''
    print(f"{c:<13} {rng(t):>14} {rng(p):>14} {vs:>27} {med(p) / med(t):>26.1f}x")
EOF
done
