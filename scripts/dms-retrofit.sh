#!/usr/bin/env bash
# Retrofits stories260K with learned DMS (train-dms) at CR 2, 4 and 8 and scores each retrofit against the original
# model with a full cache, beside every training-free policy at the CR the retrofit measured, on held-out in-domain
# text (the tail of the training text, never trained on) and on WikiText-2. Prints a Markdown table.
# Usage: scripts/dms-retrofit.sh [ASSETS_DIR] [WORK_DIR]   (defaults ../shared/assets, /tmp/fastdms-retrofit)
# Env: CRS="2 4 8", SEEDS=1000 (sampled stories of 500 tokens for the training text), TRAIN_FLAGS="..." (extra
# train-dms flags, e.g. "--decision adapter" with its own WORK_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
ASSETS="${1:-../shared/assets}"
WORK="${2:-${TMPDIR:-/tmp}/fastdms-retrofit}"
CRS="${CRS:-2 4 8}"
SEEDS="${SEEDS:-1000}"
MODEL="$ASSETS/models/stories260K/stories260K-f32.gguf"
mkdir -p "$WORK"

# 1. in-domain training text: the model's own samples at temperature 1, one per seed, 500 tokens each (kept between
#    runs), drawn through `serve` so one JVM samples 24 at a time (continuous batching)
if [ ! -s "$WORK/data.txt" ]; then
  PORT="${PORT:-8199}"
  ./fastdms serve -m "$MODEL" --port "$PORT" --max-seqs 32 2> "$WORK/serve.log" &
  SERVER=$!
  trap 'kill $SERVER 2>/dev/null || true' EXIT
  for _ in $(seq 1 60); do curl -sf "localhost:$PORT/health" >/dev/null && break; sleep 1; done
  mkdir -p "$WORK/samples"
  seq 1 "$SEEDS" | xargs -P 24 -I{} curl -sf "localhost:$PORT/v1/completions" -H 'Content-Type: application/json' \
    -d '{"prompt":"","max_tokens":500,"temperature":1,"seed":{}}' -o "$WORK/samples/{}.json"
  kill $SERVER; wait $SERVER 2>/dev/null || true; trap - EXIT
  python3 - "$WORK" "$SEEDS" <<'PY' > "$WORK/data.txt.part"
import json, sys
work, n = sys.argv[1], int(sys.argv[2])
for s in range(1, n + 1):
    print(json.load(open(f"{work}/samples/{s}.json"))["choices"][0]["text"])
PY
  mv "$WORK/data.txt.part" "$WORK/data.txt"
fi
head -c 10000 "$ASSETS/eval/wikitext-2-raw/wiki.test.raw" > "$WORK/wiki.txt"

# 2. one retrofit per target CR (same data, seed and held-out tail)
for cr in $CRS; do
  [ -s "$WORK/cr$cr.train.json" ] && continue
  # shellcheck disable=SC2086
  ./fastdms train-dms -m "$MODEL" --data "$WORK/data.txt" --target-cr "$cr" --no-progress --json \
    --log "$WORK/cr$cr.jsonl" ${TRAIN_FLAGS:-} -o "$WORK/dms-cr$cr.gguf" > "$WORK/cr$cr.train.json"
done

# 3. scores: the retrofit (f32 and FP8 cache) against the original's full cache; each training-free policy on the
#    original at the CR the retrofit measured on that text. SnapKV is left out: in eval a window is one prompt and it
#    never evicts (docs/quality.md).
evaluate() { # cr name input...
  local cr=$1 name=$2; shift 2
  ./fastdms eval -m "$WORK/dms-cr$cr.gguf" --reference-model "$MODEL" "$@" --ctx 512 --no-progress --json \
    --compare dms:dtype=f32 dms:dtype=fp8 > "$WORK/cr$cr.$name.dms.json"
  local measured
  measured=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["compression_ratio"])' "$WORK/cr$cr.$name.dms.json")
  local specs=()
  for p in sink-window knorm tova h2o; do specs+=("$p:cr=$measured" "$p:cr=$measured,dtype=fp8"); done
  ./fastdms eval -m "$MODEL" "$@" --ctx 512 --no-progress --json --compare "${specs[@]}" > "$WORK/cr$cr.$name.free.json"
}
for cr in $CRS; do
  evaluate "$cr" heldout --token-ids "$WORK/dms-cr$cr.gguf.heldout.json"
  evaluate "$cr" wiki --text "$WORK/wiki.txt"
done

python3 - "$WORK" $CRS <<'PY'
import json, sys
work, crs = sys.argv[1], sys.argv[2:]
def rows(cr, name):
    d = json.load(open(f"{work}/cr{cr}.{name}.dms.json"))["results"]
    f = json.load(open(f"{work}/cr{cr}.{name}.free.json"))["results"]
    out = [("learned DMS" + ("" if i == 0 else " fp8"), r) for i, r in enumerate(d)]
    out += [(r["config"].split(":")[0] + (" fp8" if "fp8" in r["config"] else ""), r) for r in f if r["config"].split(":")[0] != "none"]
    return out
print("| target CR | config | held-out CR | ppl (full) | Δppl | KLD | match % | WikiText CR | ppl (full) | Δppl | KLD | match % |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for cr in crs:
    t = json.load(open(f"{work}/cr{cr}.train.json"))
    for (name, a), (_, b) in zip(rows(cr, "heldout"), rows(cr, "wiki")):
        print(f"| {cr} | {name} | {a['compression_ratio']:.2f} | {a['ppl']:.3f} ({a['ppl_full']:.3f}) | {a['ppl']-a['ppl_full']:+.3f} | {a['kld']:.4f} | {100*a['token_match']:.1f} "
              f"| {b['compression_ratio']:.2f} | {b['ppl']:.2f} ({b['ppl_full']:.2f}) | {b['ppl']-b['ppl_full']:+.2f} | {b['kld']:.4f} | {100*b['token_match']:.1f} |")
    print(f"| {cr} | (training: {t['steps']} steps, {t['seconds']/60:.1f} min, {t['ms_per_step']:.0f} ms/step) | | | | | | | | | | |")
PY
