#!/usr/bin/env bash
# The GPU check, one entry point, under 8 minutes on a GPU machine: the correctness tests (pytest -m cuda tests/gpu:
# every fast 3DNA backend against the one reference), then the timers (benchmarks/time_*.py over benchmarks/harness.py),
# raw JSON with the date and the device under benchmarks/results/<date>_<device>/. Without a CUDA device it runs the
# same tests and timers on tiny grids with the kernel in Triton's interpreter (tests/benchmarks/test_gpu_check.py).
#
#   bash benchmarks/gpu_check.sh --prepare-wheels [DIR]   # HERE (with network): pure-Python wheels the GPU machine
#                                                         # lacks -> DIR (default .gpu_wheels, git-ignored)
#   bash benchmarks/gpu_check.sh [--tiny]                 # THERE: tests.json, attention.json, decoding.json,
#                                                         # static_step.json, training.json, gpu_check.{json,md,log}
#
# Environment: OUT (results folder; default benchmarks/results/<UTC date>_<device>), GPU_CHECK_PYTHON (default
# /opt/torch/.venv/bin/python3, else .venv/bin/python, else python3), GPU_CHECK_WHEELS (default .gpu_wheels),
# GPU_CHECK_SITE (throwaway install target, default /tmp/gpu_check_site), GPU_CHECK_TINY=1 (tiny grids; automatic
# without a CUDA device, where TRITON_INTERPRET=1 is set for every stage), GPU_CHECK_TIMEOUT (hard limit for all
# stages together, default 450 s; each stage also has its own limit below and leaves partial JSON when killed).
# Exit status: 0 when gpu_check.json was written (whatever it reports), 1 otherwise.
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

pick_python() {
    if [ -n "${GPU_CHECK_PYTHON:-}" ]; then echo "$GPU_CHECK_PYTHON"
    elif [ -x /opt/torch/.venv/bin/python3 ]; then echo /opt/torch/.venv/bin/python3
    elif [ -x "$ROOT/.venv/bin/python" ]; then echo "$ROOT/.venv/bin/python"
    else echo python3
    fi
}

# Pure-Python wheels that the check needs and the GPU machine's image lacks (its python is 3.12 with torch, triton,
# transformers, huggingface_hub, accelerate, safetensors, numpy, pillow, pyarrow, pandas, xxhash, fsspec). None since
# the light core (issue 29): `import nuwa_hf` needs only torch, transformers, safetensors and huggingface_hub, and no
# section builds a model with VQ-GANs (diffusers) or reads a built-in world (datasets). Name packages here to carry
# them; versions: the ones this checkout's .venv runs, so the GPU run uses what the tests use.
WHEEL_PACKAGES=""

prepare_wheels() {
    local dir="${1:-.gpu_wheels}" py specs
    if [ -z "$WHEEL_PACKAGES" ]; then
        echo "no wheels to carry (WHEEL_PACKAGES is empty): the GPU machine's own packages run every section"
        return 0
    fi
    py="${GPU_CHECK_PYTHON:-}"
    [ -z "$py" ] && { [ -x "$ROOT/.venv/bin/python" ] && py="$ROOT/.venv/bin/python" || py=python3; }
    specs=$("$py" - $WHEEL_PACKAGES <<'EOF'
import sys, importlib.metadata as md
specs = []
for name in sys.argv[1:]:
    try:
        specs.append(f"{name}=={md.version(name)}")
    except md.PackageNotFoundError:
        specs.append(name)
print(" ".join(specs))
EOF
)
    echo "downloading (no dependencies, python 3.12 wheels): $specs -> $dir"
    rm -rf "$dir" && mkdir -p "$dir" || return 1
    # shellcheck disable=SC2086
    "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 -d "$dir" $specs || return 1
    local bad
    bad=$(ls "$dir" | grep -v -- '-none-any\.whl$' || true)
    if [ -n "$bad" ]; then echo "not pure-Python wheels: $bad" >&2; return 1; fi
    local kib
    kib=$(du -sk "$dir" | cut -f1)
    ls -l "$dir"
    echo "total ${kib} KiB"
    if [ "$kib" -gt $((30 * 1024)) ]; then echo "wheels exceed 30 MiB" >&2; return 1; fi
}

if [ "${1:-}" = "--prepare-wheels" ]; then
    prepare_wheels "${2:-.gpu_wheels}"
    exit $?
fi

PY="$(pick_python)"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
export PYTHONDONTWRITEBYTECODE=1 PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
# Inductor (FlexAttention) compiles in the timer's own process: no compile workers outlive a stage killed at its
# time limit (and keep the log pipe open).
export TORCHINDUCTOR_COMPILE_THREADS=1
TINY="${GPU_CHECK_TINY:-0}"
[ "${1:-}" = "--tiny" ] && TINY=1
CUDA=$("$PY" -c "import torch; print(int(torch.cuda.is_available()))" 2>/dev/null || echo 0)
if [ "$CUDA" != "1" ]; then
    TINY=1
    export TRITON_INTERPRET=1  # before any stage imports triton (see nuwa_hf.ops.gpu_kernel)
fi
export GPU_CHECK_TINY="$TINY"
OUT="${OUT:-$("$PY" benchmarks/harness.py default-out)}"
mkdir -p "$OUT" || exit 1
# never report an earlier run's results as this one's
rm -f "$OUT"/*.json "$OUT"/*.json.tmp "$OUT/gpu_check.md" "$OUT/stages.tsv"
LOG="$OUT/gpu_check.log"
TOTAL="${GPU_CHECK_TIMEOUT:-450}"

# stage NAME LIMIT_S COMMAND...: runs it under min(LIMIT_S, what is left of TOTAL) and records "name rc seconds"; a
# timer gets three quarters of that as GPU_CHECK_BUDGET (harness.py: it starts no new case past it).
stage() {
    local name="$1" limit="$2" left rc start
    shift 2
    left=$((TOTAL - SECONDS))
    [ "$left" -lt "$limit" ] && limit="$left"
    if [ "$limit" -lt 15 ]; then
        echo "== $name: skipped (time budget spent)"
        printf '%s\t%s\t%s\n' "$name" skipped 0 >>"$OUT/stages.tsv"
        return
    fi
    echo "== $name (limit ${limit} s): $*"
    start=$SECONDS
    GPU_CHECK_BUDGET=$((limit * 3 / 4)) timeout --kill-after=10 "$limit" "$@"
    rc=$?
    echo "== $name: exit status $rc after $((SECONDS - start)) s"
    printf '%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - start))" >>"$OUT/stages.tsv"
}

{
    echo "gpu_check: $(date -u +%Y-%m-%dT%H:%M:%SZ) python=$PY out=$OUT cuda=$CUDA tiny=$TINY"
    # Carried wheels -> a throwaway --target folder, only for packages this python does not have; never the
    # machine's own site-packages (its torch, triton and transformers stay as they are).
    WHEELS="${GPU_CHECK_WHEELS:-$ROOT/.gpu_wheels}"
    SITE="${GPU_CHECK_SITE:-/tmp/gpu_check_site}"
    installed=""
    if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
        missing=$("$PY" - "$WHEELS"/*.whl <<'EOF'
import os, sys, importlib.metadata as md
for wheel in sys.argv[1:]:
    name = os.path.basename(wheel).split("-")[0]
    try:
        md.version(name)
    except md.PackageNotFoundError:
        print(wheel)
EOF
)
        if [ -n "$missing" ]; then
            rm -rf "$SITE"
            # One wheel at a time: a wheel this python cannot take costs only that package.
            for wheel in $missing; do
                if "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
                        --target "$SITE" "$wheel"; then
                    installed="$installed$(basename "$wheel") "
                else
                    echo "could not install $(basename "$wheel"); going on without it"
                fi
            done
            [ -d "$SITE" ] && export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
            echo "installed into $SITE: ${installed:-nothing}"
        else
            echo "every carried wheel's package is already installed"
        fi
    else
        echo "no wheels in $WHEELS (bash benchmarks/gpu_check.sh --prepare-wheels makes them); using installed packages"
    fi
    export GPU_CHECK_INSTALLED="$installed"
    export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
    timers=(--out "$OUT")
    [ "$TINY" = "1" ] && timers+=(--tiny)
    SECONDS=0
    # Limits (s) on a GPU: tests 90, attention 140, decoding 110, static step 60, training 40 (440 of the 450).
    NUWA_GPU_TEST_RECORD="$OUT/tests.json" stage tests 90 \
        "$PY" -m pytest -m cuda tests/gpu -q -rfEs -p no:cacheprovider
    stage attention 140 "$PY" benchmarks/time_attention.py "${timers[@]}"
    stage decoding 110 "$PY" benchmarks/time_decoding.py "${timers[@]}"
    stage static_step 60 "$PY" benchmarks/time_static_step.py "${timers[@]}"
    stage training 40 "$PY" benchmarks/time_training.py "${timers[@]}"
    "$PY" benchmarks/harness.py summarize "$OUT" >/dev/null
    echo "== summary: exit status $?"
} 2>&1 | tee "$LOG"

if [ -s "$OUT/gpu_check.json" ]; then
    [ -f "$OUT/gpu_check.md" ] && cat "$OUT/gpu_check.md"
    echo "results: $OUT/gpu_check.json $OUT/gpu_check.md (raw: $OUT/*.json)"
    exit 0
fi
echo "no $OUT/gpu_check.json was written" >&2
exit 1
