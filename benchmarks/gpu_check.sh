#!/usr/bin/env bash
# Every check and figure that needs a CUDA GPU, in one call (`make test-gpu`, then
# `make bench-gpu`), on a machine whose python3 has PyTorch, Lightning, OpenCV and SciPy but no
# network: the wheels of `make wheels` (made where pip reaches PyPI) in .whl/ are installed
# beside it first. The logs go to $OUT (default gpu-logs/); the bench figures run even when a
# test fails. Exit status: the tests', else the benchmarks'. `tests` or `bench` runs one half.
# GPU time comes in short slots: within GPU_CHECK_SECONDS (default 540) the tests get at most
# 55 % and the benchmarks the rest, each stopped when its share is spent (what it printed is
# kept), so a hung test cannot take the benchmarks' time.
#
#     bash benchmarks/gpu_check.sh [all|tests|bench]
set -uo pipefail
part=${1:-all}
cd "$(dirname "$0")/.."
out=${OUT:-gpu-logs}
mkdir -p "$out"
if ! compgen -G ".whl/*.whl" > /dev/null; then
    echo "no wheels in .whl/: run \`make wheels\` where pip reaches PyPI, and bring .whl/ here" >&2
    exit 2
fi
site=$(mktemp -d)
python3 -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --target "$site" \
    .whl/*.whl || exit
export PYTHONPATH="$site:$PWD" PYTHONUNBUFFERED=1
{
    date -u +%FT%TZ
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python3 -c "import torch, pytorch_lightning as pl; print('torch', torch.__version__, \
'cuda', torch.version.cuda, 'lightning', pl.__version__, torch.cuda.get_device_name())"
} 2>&1 | tee "$out/machine.txt"
started=$SECONDS
budget=${GPU_CHECK_SECONDS:-540}
# each command make echoes gets the seconds since the start, so the log shows what took how long
stamped() { while IFS= read -r line; do
    [[ $line == python3\ * ]] && echo "[$((SECONDS - started)) s]"
    printf '%s\n' "$line"
done; }
tests=0
bench=0
if [ "$part" != bench ]; then
    share=$([ "$part" = tests ] && echo "$budget" || echo $((budget * 55 / 100)))
    timeout -k 10 "$share" make --no-print-directory test-gpu PY=python3 2>&1 | stamped |
        tee "$out/test-gpu.log"
    tests=${PIPESTATUS[0]}
    echo "test-gpu: exit $tests after $((SECONDS - started)) s" | tee -a "$out/machine.txt"
fi
if [ "$part" != tests ]; then
    left=$((budget - (SECONDS - started)))
    timeout -k 10 $((left > 60 ? left : 60)) \
        make --no-print-directory bench-gpu PY=python3 2>&1 | stamped | tee "$out/bench-gpu.log"
    bench=${PIPESTATUS[0]}
    echo "bench-gpu: exit $bench, $((SECONDS - started)) s in all" | tee -a "$out/machine.txt"
fi
[ "$tests" -ne 0 ] && exit "$tests"
exit "$bench"
