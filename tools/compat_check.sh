#!/usr/bin/env bash
# The package on the GPU machine's versions (torch 2.11, triton 3.6), proven on this CPU machine: `make compat`.
#
#   tools/compat_check.sh [prepare|check|all]      (default: all)
#
# prepare: a stand-in of the GPU image in $COMPAT_ENV (created once, reused; outside the repository): torch and
#   triton at the image's versions (the CUDA build of torch 2.11.0 is the only one the registry has: it runs on
#   a CPU machine, its nvidia-* wheels are a few GB, fetched once) and the image's distributions the project
#   needs (tools/gpu_wheels.py provided), pip held to those torch/triton versions by a constraints file. The
#   project's other dependencies are NOT installed there: like on the GPU machine they come from the carried
#   wheels (tools/gpu_wheels.txt, .gpu-wheels/cp3XX), installed --no-deps into a fresh target on PYTHONPATH.
# check: imports every module, `invobench list`, `invobench check` on the CPU variants, one torch.compile
#   forward and backward, the Triton tests of tests/ops/test_triton.py (interpreter numerics and the ahead-of-time
#   compile for sm_80/sm_90), and prints the Triton kernels' spills at these versions; exits 1 naming each
#   check that failed. Two things differ from the default tier, each said when it runs:
#   - triton 3.6's interpreter converts a runtime loop bound with int(array of shape (1,)), which numpy >= 2.4
#     refuses (triton 3.9 squeezes first): the interpreter step runs with numpy < 2.4 ahead on PYTHONPATH.
#     The GPU machine never interprets, so its numpy 2.5 is no concern there.
#   - test_ptxas_figures_are_sane asserts that no configuration spills with the triton the project pins; the
#     spills at these versions are printed instead (a performance fact of that triton's code generation).
# The GPU check's rehearsal (make gpu-rehearsal) runs tools/gpu_check.sh in the same stand-in.
set -uo pipefail
cd "$(dirname "$0")/.."

COMPAT_ENV=${COMPAT_ENV:-$HOME/.cache/invobench-compat-torch2.11}
COMPAT_TORCH=${COMPAT_TORCH:-2.11.0}
COMPAT_TRITON=${COMPAT_TRITON:-3.6.0}
DEV_PYTHON=${DEV_PYTHON:-.venv/bin/python}
WHEELS_ROOT=${GPU_WHEELS_ROOT:-.gpu-wheels}
PY=$COMPAT_ENV/bin/python
what=${1:-all}

say() { printf '\n== %s\n' "$*"; }

prepare() {
    if [ ! -x "$PY" ]; then
        say "creating $COMPAT_ENV"
        python3 -m venv "$COMPAT_ENV" || return 1
    fi
    local constraints="$COMPAT_ENV/constraints.txt"
    printf 'torch==%s\ntriton==%s\n' "$COMPAT_TORCH" "$COMPAT_TRITON" >"$constraints"
    local provided
    provided=$("$DEV_PYTHON" tools/gpu_wheels.py provided) || { echo "tools/gpu_wheels.py provided failed" >&2; return 1; }
    say "stand-in of the GPU image: torch $COMPAT_TORCH, triton $COMPAT_TRITON and $(echo "$provided" | wc -l) image distributions"
    # ninja: not imported, but torch's C++ extension build (involution.cpu) runs it, and the image has it
    # shellcheck disable=SC2086
    "$PY" -m pip install --quiet --disable-pip-version-check -c "$constraints" \
        "torch==$COMPAT_TORCH" "triton==$COMPAT_TRITON" ninja $provided || return 1
    local version
    version=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')
    if [ ! -d "$WHEELS_ROOT/cp$version" ]; then
        say "carried wheels for cp$version"
        "$DEV_PYTHON" tools/gpu_wheels.py download "$WHEELS_ROOT/cp$version" \
            --python-version "${version:0:1}.${version:1}" || return 1
    fi
}

failed=()
step() {  # step NAME COMMAND...: run it, log it, remember a failure and go on
    local name=$1; shift
    say "$name"
    local t0=$SECONDS
    if "$@"; then echo "-- $name: ok ($((SECONDS - t0)) s)"; else
        echo "-- $name: FAILED ($((SECONDS - t0)) s)"; failed+=("$name"); fi
}

check() {
    [ -x "$PY" ] || { echo "no stand-in at $COMPAT_ENV: run tools/compat_check.sh prepare (make compat does)" >&2; return 1; }
    local version
    version=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')
    site=$(mktemp -d "${TMPDIR:-/tmp}/invobench-compat-site.XXXXXX")
    trap 'rm -rf "$site"' EXIT
    step "install the carried wheels (--no-deps, --target)" \
        "$PY" -m pip install --quiet --disable-pip-version-check --no-index --no-deps --no-compile --target "$site" \
        "$WHEELS_ROOT/cp$version"/*.whl
    export PYTHONPATH=$site
    step "versions: torch $COMPAT_TORCH, triton $COMPAT_TRITON" "$PY" -c "
import torch, triton
print('python', __import__('sys').version.split()[0], 'torch', torch.__version__, 'triton', triton.__version__)
assert torch.__version__.split('+')[0] == '$COMPAT_TORCH', torch.__version__
assert triton.__version__ == '$COMPAT_TRITON', triton.__version__"
    step "carried wheels complete and consistent" "$PY" tools/gpu_wheels.py verify
    step "import every module of invobench" "$PY" -c "
import importlib, pkgutil, invobench
names = [m.name for m in pkgutil.walk_packages(invobench.__path__, 'invobench.') if not m.name.endswith('__main__')]
for name in names:
    importlib.import_module(name)
print(len(names), 'modules imported from', invobench.__path__[0])"
    step "invobench list" "$PY" -m invobench list
    step "invobench check on the CPU variants" "$PY" -m invobench check --device cpu --dtype float32,bfloat16 \
        --variants involution.eager,involution.unfold,involution.cpu,conv.dense,conv.grouped,conv.depthwise,attention.unfold,attention.flex
    step "torch.compile: involution.compile forward and backward" "$PY" -c "
import torch
from invobench.ops.involution import involution
from invobench.ops.involution.reference import involution_reference
x = torch.randn(1, 4, 6, 5, requires_grad=True); w = torch.randn(1, 2, 9, 6, 5, requires_grad=True)
out = involution(x, w, kernel_size=3, variant='compile'); out.sum().backward()
torch.testing.assert_close(out, involution_reference(x.detach(), w.detach(), 3))
assert x.grad is not None and w.grad is not None
print('compiled forward matches the reference; backward ran')"
    local overlay="$COMPAT_ENV/numpy-below-2.4"
    if [ ! -d "$overlay/numpy" ]; then
        "$PY" -m pip install --quiet --disable-pip-version-check --no-deps --target "$overlay" "numpy<2.4" ||
            echo "could not install numpy<2.4 into $overlay; the interpreter tests will meet triton 3.6's numpy bug"
    fi
    echo "(numpy < 2.4 ahead on PYTHONPATH for this step: triton $COMPAT_TRITON's interpreter fails on a runtime loop"
    echo " bound under numpy >= 2.4; test_ptxas_figures_are_sane deselected: the next step prints the spills)"
    step "Triton tests: interpreter numerics, ahead-of-time compile for sm_80/sm_90 (tests/ops/test_triton.py)" \
        env PYTHONPATH="$overlay:$site" "$PY" -m pytest -q -p no:cacheprovider -m "not slow and not gpu" \
        --deselect tests/ops/test_triton.py::test_ptxas_figures_are_sane tests/ops/test_triton.py
    step "Triton kernels' spills at these versions (information)" "$PY" -c "
from invobench.ops.involution import triton_static
profiles = triton_static.static_profiles([80, 90], ['float32', 'bfloat16'])
spilling = [p for p in profiles if p.spill_store_bytes or p.spill_load_bytes]
for p in spilling:
    print(f'{p.kernel} [{p.config}] {p.arch} {p.dtype}: {p.registers} registers, spills {p.spill_store_bytes}/{p.spill_load_bytes} B')
print(f'{len(spilling)} of {len(profiles)} kernel builds spill')
assert not [p for p in profiles if p.error], [p.error for p in profiles if p.error]"
    say "summary"
    if [ ${#failed[@]} -gt 0 ]; then
        printf 'compat check FAILED (torch %s, triton %s): %s\n' "$COMPAT_TORCH" "$COMPAT_TRITON" "$(IFS=';'; echo "${failed[*]}")"
        return 1
    fi
    echo "compat check passed: torch $COMPAT_TORCH, triton $COMPAT_TRITON, the carried wheels for cp$version"
}

case $what in
    prepare) prepare ;;
    check) check ;;
    all) prepare && check ;;
    *) echo "usage: tools/compat_check.sh [prepare|check|all]" >&2; exit 2 ;;
esac
