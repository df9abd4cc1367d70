#!/usr/bin/env bash
# One-shot GPU check for a rented CUDA machine (no internet, no lucent, no Django there).
#
#   bash bench/gpu_check.sh          # from the repository root; wheels in .whl/ (git-ignored)
#
# The wheels, fetched once on a machine with the package index (Python 3.12 on the GPU side):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux2014_x86_64 -d .whl torch-lucent==0.1.8 \
#     kornia==0.4.1 decorator==5.3.1 ipython==9.18.1 traitlets==5.16.1 pygments==2.21.0 \
#     ipython-pygments-lexers==1.1.1 jedi==0.20.1 parso==0.8.7 prompt-toolkit==3.0.53 \
#     wcwidth==0.9.4 stack-data==0.6.3 executing==2.3.0 asttokens==3.0.2 pure-eval==0.2.4 \
#     matplotlib-inline==0.2.2 pexpect==4.9.0 ptyprocess==0.7.0
#
# 1. installs the pure-Python wheels carried in .whl/ (torch-lucent, kornia 0.4.1, IPython and
#    its deps, decorator) into /tmp/site; the machine's torch/torchvision/numpy/pillow are used;
# 2. prints the GPU, Python and torch versions;
# 3. runs the CUDA-only test(s) of tests/engine/test_render.py (no Django: --noconftest);
# 4. runs bench/render.py on CUDA at the PERFORMANCE.md anchor settings (mixed4a, 224 px,
#    K=256, 512 steps, 2 stock channels) with torch.compile (fp32: bench/render.py has no
#    bf16 switch), then, time permitting, our engine alone with compile + bf16 autocast
#    (render_units(dtype=torch.bfloat16, compile=True), same K/steps), then an eager
#    bench/render.py run at fewer steps.
# Everything is tee'd to "$OUT/gpu_check.log"; a short summary goes to
# "$OUT/gpu_check_summary.txt". The whole script keeps to GPU_CHECK_BUDGET_S seconds (default
# 340): optional steps are skipped, or cut by `timeout`, when the budget runs out.
#
# Knobs (environment): GPU_CHECK_BUDGET_S, GPU_CHECK_K (256), GPU_CHECK_STEPS (512),
# GPU_CHECK_STOCK (2), GPU_CHECK_SIZE (224), GPU_CHECK_LAYER (mixed4a), GPU_CHECK_EAGER_STEPS
# (128), GPU_CHECK_DEVICE (cuda), GPU_CHECK_PYTHON (python3), GPU_CHECK_SITE (/tmp/site).
# A CPU smoke test of this script itself:
#   GPU_CHECK_DEVICE=cpu GPU_CHECK_K=2 GPU_CHECK_STEPS=2 GPU_CHECK_STOCK=1 GPU_CHECK_SIZE=64 \
#   GPU_CHECK_EAGER_STEPS=2 GPU_CHECK_PYTHON=.venv/bin/python bash bench/gpu_check.sh

set -u -o pipefail
export PYTHONUNBUFFERED=1

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2
OUT="${OUT:-/tmp/out}"
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
SUMMARY="$OUT/gpu_check_summary.txt"

BUDGET_S="${GPU_CHECK_BUDGET_S:-340}"
K="${GPU_CHECK_K:-256}"
STEPS="${GPU_CHECK_STEPS:-512}"
STOCK="${GPU_CHECK_STOCK:-2}"
SIZE="${GPU_CHECK_SIZE:-224}"
LAYER="${GPU_CHECK_LAYER:-mixed4a}"
EAGER_STEPS="${GPU_CHECK_EAGER_STEPS:-128}"
DEVICE="${GPU_CHECK_DEVICE:-cuda}"
PY="${GPU_CHECK_PYTHON:-python3}"
SITE="${GPU_CHECK_SITE:-/tmp/site}"

FAILED=()

remaining() { echo $((BUDGET_S - SECONDS)); }

# step NAME TIMEOUT_S CMD...: run CMD under a timeout, report rc and wall time, never abort.
step() {
    local name="$1" limit="$2"
    shift 2
    echo
    echo "=== [$SECONDS s] $name (timeout ${limit}s) ==="
    echo "+ $*"
    local start=$SECONDS rc
    timeout --kill-after=10 "$limit" "$@"
    rc=$?
    echo "=== [$SECONDS s] $name: rc=$rc in $((SECONDS - start)) s ==="
    if [ "$rc" -ne 0 ]; then
        FAILED+=("$name (rc=$rc)")
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            echo "!!! $name hit its ${limit}s timeout: bench/render.py prints only at the end," \
                "so its numbers are lost"
        fi
    fi
    return "$rc"
}

main() {
    echo "gpu_check.sh: $(date -u +%FT%TZ) on $(hostname), budget ${BUDGET_S}s, repo $ROOT"
    echo "settings: device=$DEVICE K=$K steps=$STEPS stock=$STOCK size=$SIZE layer=$LAYER" \
        "eager_steps=$EAGER_STEPS python=$PY site=$SITE"

    # --- 1. wheels -------------------------------------------------------------------------
    echo
    echo "=== [$SECONDS s] install .whl/*.whl into $SITE ==="
    ls -1 .whl/ 2>&1
    if ! "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$SITE" .whl/*.whl; then
        # No pip (or it refused): a wheel of pure Python is a zip of the site-packages tree.
        echo "pip install failed; unzipping the wheels into $SITE instead"
        "$PY" -c "import glob, sys, zipfile
for w in sorted(glob.glob('.whl/*.whl')):
    zipfile.ZipFile(w).extractall(sys.argv[1])" "$SITE" || FAILED+=("wheel install")
    fi
    export PYTHONPATH="$SITE:$ROOT"
    echo "PYTHONPATH=$PYTHONPATH"
    "$PY" - <<'EOF' || FAILED+=("imports")
import importlib, importlib.metadata as md
for mod, dist in [("lucent", "torch-lucent"), ("kornia", "kornia"), ("IPython.display", "ipython"),
                  ("decorator", "decorator"), ("tqdm", "tqdm"), ("PIL", "pillow"),
                  ("numpy", "numpy"), ("torchvision", "torchvision"), ("pytest", "pytest")]:
    try:
        m = importlib.import_module(mod)
        print(f"  {mod:<16} {md.version(dist):<14} {getattr(m, '__file__', '')}")
    except Exception as exc:
        print(f"  {mod:<16} FAILED: {exc!r}")
        raise
from lucent.optvis import objectives, param, render  # what bench/render.py imports
import rendering.engine
print("  lucent.optvis and rendering.engine import fine")
EOF

    # --- 2. machine ------------------------------------------------------------------------
    echo
    echo "=== [$SECONDS s] machine ==="
    nvidia-smi -L || { [ "$DEVICE" = cuda ] && FAILED+=("nvidia-smi"); }
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit \
        --format=csv 2>/dev/null
    echo "nproc: $(nproc)   gcc: $(gcc --version 2>/dev/null | head -1 || echo none)"
    "$PY" -VV
    "$PY" - <<'EOF' || FAILED+=("torch info")
import torch, torchvision
print(f"torch {torch.__version__} (cuda {torch.version.cuda}, cudnn "
      f"{torch.backends.cudnn.version()}), torchvision {torchvision.__version__}")
try:
    import triton
    print(f"triton {triton.__version__}")
except ImportError as exc:
    print(f"triton: {exc}")
print(f"cuda available: {torch.cuda.is_available()}")
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"device 0: {p.name}, {p.total_memory / 2**30:.1f} GiB, sm {p.major}.{p.minor}, "
          f"{p.multi_processor_count} SMs, bf16 {torch.cuda.is_bf16_supported()}")
EOF

    # --- 3. CUDA-only tests ----------------------------------------------------------------
    # The only CUDA-only test under tests/ (grep -ri cuda tests/):
    # tests/engine/test_render.py::test_the_same_seed_starts_from_the_same_image_on_cpu_and_cuda.
    # tests/conftest.py imports django in an autouse fixture, so skip it (--noconftest); the
    # test's fixture lives in the test file. -rs shows any skip reason (a skip is a failure here).
    step "pytest CUDA-only tests" 150 "$PY" -m pytest -p no:django -p no:cacheprovider \
        --noconftest -v -rs tests/engine/test_render.py -k cuda \
        --junitxml="$OUT/pytest_cuda.xml"
    if ! grep -q 'skipped="0"' "$OUT/pytest_cuda.xml" 2>/dev/null; then
        [ "$DEVICE" = cuda ] && FAILED+=("CUDA test skipped or not run")
    fi

    # --- 4a. bench/render.py, compiled fp32, anchor settings -------------------------------
    # Estimate on an H200 at K=256: ~70 s fixed (imports, models, compile warm-up ~50-60 s)
    # plus ~0.22 s per step (stock 2 ch ~23 s, lucent batched ~67 s, ours ~15-30 s at 512).
    local left steps_a limit
    left=$(remaining)
    steps_a=$STEPS
    if [ "$DEVICE" = cuda ] && [ "$STEPS" -gt 256 ] && [ "$left" -lt 250 ]; then
        steps_a=256
        echo "NOTE: only ${left}s left: compiled bench at $steps_a steps instead of $STEPS" \
            "(s/ch-step stays comparable to the 512-step anchors)"
    fi
    limit=$((left - 5))
    [ "$limit" -gt 300 ] && limit=300
    [ "$limit" -lt 30 ] && limit=30
    step "bench/render.py compiled fp32 (K=$K, $steps_a steps)" "$limit" \
        "$PY" bench/render.py --device "$DEVICE" --k "$K" --steps "$steps_a" \
        --stock-channels "$STOCK" --size "$SIZE" --layer "$LAYER" --compile

    # --- 4b. ours alone, compile + bf16 autocast (bench/render.py cannot ask for bf16) -----
    left=$(remaining)
    if [ "$left" -ge 100 ] || [ "$DEVICE" != cuda ]; then
        step "ours compiled bf16 (K=$K, $steps_a steps)" $((left > 125 ? 120 : left - 5)) \
            "$PY" - "$DEVICE" "$K" "$steps_a" "$SIZE" "$LAYER" <<'EOF'
# Same model, seed, preprocessing and quality measure as bench/render.py's "ours" row.
import sys, time
import torch
from lucent.modelzoo import inceptionv1
from rendering.engine import render_units, unit_activation

device, k, steps, size, layer = sys.argv[1], *map(int, sys.argv[2:5]), sys.argv[5]
torch.set_num_threads(2)
device = torch.device(device)
torch.manual_seed(0)
model = inceptionv1(pretrained=False).to(device)
pre = lambda images: images * 255 - 117
units = list(range(k))
kw = dict(size=size, seed=0, device=device, preprocess=pre, compile=True, dtype=torch.bfloat16)
sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
start = time.perf_counter()
render_units(model, layer, units, steps=1, **kw)
sync()
warm = time.perf_counter() - start
start = time.perf_counter()
result = render_units(model, layer, units, steps=steps, **kw)
sync()
seconds = time.perf_counter() - start
act = float(unit_activation(model, layer, result.images, units, preprocess=pre,
                            device=device).mean())
print(f"layer {layer}, {size} px, {steps} steps, device {device}, compile+bf16, K={k}")
print(f"ours bf16: {seconds:.2f} s, {k / seconds:.3f} ch/s, {seconds / (k * steps):.6f} "
      f"s/ch-step, {seconds / k:.4f} s/ch, mean act {act:.4f}; first call incl. compile "
      f"{warm:.1f} s for 1 step; forward {result.metrics['forward']}, "
      f"dtype {result.metrics['dtype']}, compiled {result.metrics['compiled']}")
if device.type == "cuda":
    print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
print(f"summary bf16 ours_ch_per_s={k / seconds:.4f} mean_act={act:.4f} steps={steps}")
EOF
    else
        echo "SKIPPED ours compiled bf16: only ${left}s left"
    fi

    # --- 4c. bench/render.py eager, fewer steps (ratios only; ~50 s at 128 steps) ----------
    left=$(remaining)
    if [ "$left" -ge 75 ] || [ "$DEVICE" != cuda ]; then
        echo "NOTE: eager run at $EAGER_STEPS steps (not 512) and 1 stock channel to fit the" \
            "budget; compare its s/ch-step and ratios, not its totals"
        step "bench/render.py eager fp32 (K=$K, $EAGER_STEPS steps)" $((left - 5)) \
            "$PY" bench/render.py --device "$DEVICE" --k "$K" --steps "$EAGER_STEPS" \
            --stock-channels 1 --size "$SIZE" --layer "$LAYER"
    else
        echo "SKIPPED eager bench: only ${left}s left"
    fi

    echo
    echo "=== [$SECONDS s] done ==="
    if [ "${#FAILED[@]}" -gt 0 ]; then
        printf 'FAILED: %s\n' "${FAILED[@]}"
        return 1
    fi
    echo "all steps passed"
}

main 2>&1 | tee "$LOG"
rc=$?
{
    echo "gpu_check.sh rc=$rc"
    grep -E '^(=== .*rc=|layer |method|stock lucent|lucent batched|ours|uniform|summary|NOTE|SKIPPED|FAILED|!!!|peak|torch |device 0|GPU |tests/engine/.*(PASSED|FAILED|SKIPPED|ERROR))' "$LOG"
} >"$SUMMARY"
echo "log: $LOG, summary: $SUMMARY"
exit "$rc"
