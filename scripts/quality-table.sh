#!/usr/bin/env bash
# Reproduces the README's quality table: fastdms eval on stories260K for every KV policy at CR 2/4/8 and every KV
# dtype, on WikiText-2 test text and on text the model generated itself. Prints a Markdown table.
# Usage: scripts/quality-table.sh [ASSETS_DIR]   (default ../shared/assets)
set -euo pipefail
cd "$(dirname "$0")/.."
ASSETS="${1:-../shared/assets}"
OUT="${TMPDIR:-/tmp}/fastdms-quality"
mkdir -p "$OUT"
# 1. WikiText-2: the first 511 tokens of the test split (stories260K's context is 512)
head -c 2500 "$ASSETS/eval/wikitext-2-raw/wiki.test.raw" > "$OUT/wiki.txt"
# 2. model-generated text: 511 tokens sampled from BOS (in-domain for this model)
./fastdms generate -n 510 --temperature 1 --seed 1 --json --no-progress 2>/dev/null \
  | python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps(d["prompt_ids"]+d["ids"]))' > "$OUT/gen.json"
SPECS=()
for dt in f32 bf16 f16 fp8 q8; do
  SPECS+=("none:dtype=$dt")
  for cr in 2 4 8; do
    for p in sink-window knorm tova h2o snapkv; do SPECS+=("$p:cr=$cr,dtype=$dt"); done
  done
  # learned DMS on a model not trained for it: the decision offset sets how much is evicted
  # w=1000 evicts nothing in a 511-token window: it isolates the cost of zeroing the borrowed channel
  SPECS+=("dms:w=1000,dtype=$dt")
  for off in 5 -200 -1000; do SPECS+=("dms:w=16,offset=$off,dtype=$dt"); done
done
run() { ./fastdms eval --no-progress --ctx 512 --max-tokens 511 "$@" --json --compare "${SPECS[@]}"; }
run --text "$OUT/wiki.txt" > "$OUT/wiki.out.json"
run --token-ids "$OUT/gen.json" > "$OUT/gen.out.json"
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
w = {r["config"]: r for r in json.load(open(out + "/wiki.out.json"))["results"]}
g = {r["config"]: r for r in json.load(open(out + "/gen.out.json"))["results"]}
print("| config | CR | WikiText ppl (full) | Δppl | KLD | match % | generated-text ppl (full) | Δppl | KLD | match % |")
print("|---|---|---|---|---|---|---|---|---|---|")
for k, a in w.items():
    b = g[k]
    print(f"| `{k}` | {a['compression_ratio']:.2f} | {a['ppl']:.2f} ({a['ppl_full']:.2f}) | {a['ppl']-a['ppl_full']:+.3f} | {a['kld']:.4f} | {100*a['token_match']:.1f} "
          f"| {b['ppl']:.3f} ({b['ppl_full']:.3f}) | {b['ppl']-b['ppl_full']:+.4f} | {b['kld']:.4f} | {100*b['token_match']:.1f} |")
PY
