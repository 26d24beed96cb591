#!/usr/bin/env bash
# Every benchmark on one CUDA GPU (bf16 autocast), in the order of what matters most, each step under a time limit
# so that one slow step cannot take the others' time. The log goes to stdout and to $OUT/gpu.log.
#
#   OUT=/tmp/gpu-bench PIO_011_DIR=/path/to/perceiver-io-0.11 bash benchmarks/gpu.sh
#
# PIO_011_DIR holds perceiver-io 0.11 and einops (`pip install --no-deps --target DIR perceiver-io==0.11.0 einops`)
# where the GPU machine cannot install packages itself. BUDGET (seconds, default 480) skips the steps that would
# start after it; ONLY (a bash regular expression) runs only the steps whose arguments match it.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT=${OUT:-/tmp/gpu-bench}
BUDGET=${BUDGET:-480}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu.log") 2>&1

step() {  # step LIMIT_SECONDS ARGS...: one benchmark run, skipped once the budget is spent
    local limit=$1
    shift
    if [[ -n ${ONLY:-} && ! "$*" =~ $ONLY ]]; then
        return
    fi
    if ((SECONDS >= BUDGET)); then
        echo "== skipped (budget of ${BUDGET} s spent): $*"
        return
    fi
    echo "== [${SECONDS} s] $PYTHON $*"
    timeout "$limit" "$PYTHON" "$@" || echo "== exit status $? (124: stopped after $limit s)"
}

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
# the benchmarks import this library from the working tree: stop early (before any device time is spent on
# benchmarks) when the machine's packages are outside the ranges this library supports
"$PYTHON" - <<'PY' || exit 1
import importlib.metadata as md, re, sys
from packaging.requirements import Requirement
text = open("pyproject.toml").read()
deps = re.search(r"dependencies = \[(.*?)\]", text, re.S).group(1)
bad = []
for line in re.findall(r'"([^"]+)"', deps):
    req = Requirement(line)
    if req.name not in ("torch", "transformers"):
        continue
    version = md.version(req.name)
    print(req.name, version, "required:", req.specifier)
    if not req.specifier.contains(version.split("+")[0], prereleases=True):
        bad.append(f"{req.name} {version} is outside {req.specifier}")
sys.exit("; ".join(bad) + " (install a supported version, e.g. from carried wheels)" if bad else 0)
PY

# Perceiver AR training: model FLOPs utilization of a large config, this library alone, eager and compiled
step 150 -m benchmarks.clm_train --no-peer --compile --repeats 10 --num-layers 16 --num-channels 2048 \
    --num-heads 16 --max-seq-len 4096 --max-latents 2048 --batch-size 8
# Perceiver AR training step vs perceiver-io 0.11 (the CPU config)
step 90 -m benchmarks.clm_train --compile --repeats 20
# generation vs GPT-2, per-token latency
step 180 -m benchmarks.clm_generate --compile --repeats 5
# masked LM forward vs transformers: language-perceiver (26 layers), then 6 layers eager and compiled
step 60 -m benchmarks.mlm_forward --batch-size 16 --repeats 10
step 90 -m benchmarks.mlm_forward --batch-size 16 --layers 6 --compile --repeats 10
# long inputs: time and peak allocated memory from 1k to 64k tokens
step 240 -m benchmarks.mlm_forward --long --repeats 3
echo "== done after ${SECONDS} s"
