"""The CUDA involution kernels (invobench/ops/involution/csrc/involution_cuda.cu), proven without a GPU.

- nvcc compiles the module for sm_80 and sm_90 (`-cubin -Xptxas -v`); ptxas's figures are read
  and fp32 at K ≤ 7 must not spill.
- A host harness (tests/harness/cuda/involution_harness.cu, built with nvcc for the host) runs each
  kernel's per-thread function for every thread index of a small grid and the results are checked
  against the float64 reference: borders, stride 2, dilation 2, K = 1 and 7, G = 1 and G = C.
- The loader's launch planning agrees with the kernel's own shared-memory arithmetic; its error
  paths name the cause and the fix.
- NVRTC (CuPy, nvidia-cuda-nvrtc and nvidia-cuda-runtime are in the `dev` extra, so the default tier runs
  these): the loader's own compile of the shipped source with its options, every dtype, sm_80 and sm_90,
  without asking the driver; the disk cache; compile errors naming the line.
- Tests marked `gpu` run the registered variants on a CUDA device against the reference.

Compiled cubins and the harness binary are built once per session (tmp_path_factory).
"""
from __future__ import annotations

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from invobench.ops.involution import APPLY, involution
from invobench.ops.involution import cuda as cuda_loader
from invobench.ops.involution.cuda_static import find_nvcc, profiles_from_report, ptxas_report, static_profiles
from invobench.ops.involution.reference import involution_reference, involution_reference_backward
from invobench.registry import Case, get
from invobench.core import out_size
from invobench.testing import assert_close

NVCC = find_nvcc()
HARNESS_SOURCE = Path(__file__).resolve().parents[1] / "harness" / "cuda" / "involution_harness.cu"
KERNEL_SOURCE = cuda_loader.KERNEL_SOURCE

needs_nvcc = pytest.mark.skipif(
    NVCC is None,
    reason="nvcc not found (PATH, $CUDA_PATH, /usr/local/cuda): install a CUDA toolkit to compile the CUDA "
    "kernels and run the host harness",
)

ENTRY_POINTS = {name.removeprefix("involution_") for name in cuda_loader._ENTRY_POINTS}

# ---------------------------------------------------------------------------------------------
# nvcc + ptxas
# ---------------------------------------------------------------------------------------------

#: (dtype, K, arch) compiled in the default tier: fp32 at every K ≤ 7 on both architectures (the
#: no-spill promise), and each other dtype at K = 7 on one of them. The `slow` test compiles the rest.
PTXAS_CONFIGS = [("float32", k, arch) for arch in (80, 90) for k in (1, 3, 5, 7)] + [
    ("float16", 7, 80), ("bfloat16", 7, 90), ("float64", 7, 80),
]


def _ptxas_table(profiles) -> str:
    rows = [f"{'kernel':24s} {'arch':6s} {'dtype':9s} {'config':45s} regs spill_st spill_ld stack smem"]
    for p in profiles:
        rows.append(f"{p.kernel:24s} {p.arch:6s} {p.dtype:9s} {p.config:45s} {p.registers!s:>4} "
                    f"{p.spill_store_bytes!s:>8} {p.spill_load_bytes!s:>8} {p.stack_bytes!s:>5} {p.shared_bytes}")
    return "\n".join(rows)


@pytest.fixture(scope="session")
def ptxas_profiles() -> dict:
    """{(dtype, K, arch): [StaticKernelProfile]} for PTXAS_CONFIGS, compiled two at a time."""
    if NVCC is None:
        pytest.skip("nvcc not found")
    with ThreadPoolExecutor(max_workers=2) as pool:
        reports = list(pool.map(lambda cfg: ptxas_report(*cfg, nvcc=NVCC), PTXAS_CONFIGS))
    return {cfg: profiles_from_report(report, *cfg) for cfg, report in zip(PTXAS_CONFIGS, reports)}


@needs_nvcc
@pytest.mark.parametrize("config", PTXAS_CONFIGS, ids=lambda c: f"{c[0]}-K{c[1]}-sm_{c[2]}")
def test_every_entry_point_compiles_with_figures(ptxas_profiles, config):
    profiles = ptxas_profiles[config]
    assert {p.kernel for p in profiles} == ENTRY_POINTS, _ptxas_table(profiles)
    for p in profiles:
        assert p.error is None
        assert p.registers is not None and 0 < p.registers <= 255, _ptxas_table(profiles)
        assert p.spill_store_bytes is not None and p.stack_bytes is not None


@needs_nvcc
@pytest.mark.parametrize("config", [c for c in PTXAS_CONFIGS if c[0] == "float32"], ids=lambda c: f"K{c[1]}-sm_{c[2]}")
def test_fp32_kernels_do_not_spill_up_to_k7(ptxas_profiles, config):
    profiles = ptxas_profiles[config]
    spilling = [p for p in profiles if p.spill_store_bytes or p.spill_load_bytes or p.stack_bytes]
    assert not spilling, "local-memory spills:\n" + _ptxas_table(spilling)


@needs_nvcc
@pytest.mark.parametrize("config", [c for c in PTXAS_CONFIGS if c[0] != "float64"],
                         ids=lambda c: f"{c[0]}-K{c[1]}-sm_{c[2]}")
def test_tiled_kernels_fit_four_blocks_of_128_threads(ptxas_profiles, config):
    """Occupancy: ≤ 128 registers lets 4 blocks of 128 threads (2 of 256 for grad-kernel) share 64K registers."""
    heavy = [p for p in ptxas_profiles[config] if "tiled" in p.kernel and p.registers > 128]
    assert not heavy, _ptxas_table(heavy)


@needs_nvcc
def test_static_profiles_names_backend_arch_and_dynamic_shared_memory():
    profiles = static_profiles([80], ["float32", "int8"], kernel_sizes=(1,))
    good = [p for p in profiles if p.error is None]
    assert {p.kernel for p in good} == ENTRY_POINTS
    assert all(p.backend == "cuda" and p.arch == "sm_80" and p.dtype == "float32" for p in good)
    fwd = next(p for p in good if p.kernel == "fwd_tiled_unit")
    planned = cuda_loader.plan("tiled", "fwd", "float32", 32, 256, 16, 56, 56, 1, 1, 1, 227 * 1024)
    assert fwd.shared_bytes == planned.shared_bytes and "dynamic smem" in fwd.config
    (bad,) = [p for p in profiles if p.error]
    assert bad.dtype == "int8" and "not supported" in bad.error


def test_ptxas_report_is_split_per_function():
    report = """ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'involution_fwd_tiled' for 'sm_90'
ptxas info    : Function properties for involution_fwd_tiled
    8 bytes stack frame, 4 bytes spill stores, 12 bytes spill loads
ptxas info    : Used 255 registers, used 1 barriers, 1024 bytes smem
ptxas info    : Compiling entry function 'involution_fwd_simple' for 'sm_90'
ptxas info    : Function properties for involution_fwd_simple
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 40 registers, used 0 barriers
"""
    by_name = {p.kernel: p for p in profiles_from_report(report, "float32", 7, 90)}
    tiled, simple = by_name["fwd_tiled"], by_name["fwd_simple"]
    assert (tiled.registers, tiled.spill_store_bytes, tiled.spill_load_bytes, tiled.stack_bytes) == (255, 4, 12, 8)
    assert tiled.shared_bytes > 1024  # static 1024 + the planned dynamic tile
    assert (simple.registers, simple.spill_store_bytes, simple.shared_bytes) == (40, 0, 0)


@pytest.mark.slow
@needs_nvcc
@pytest.mark.parametrize("arch", [80, 90])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
def test_every_dtype_and_k_compiles(request, dtype, arch):
    """Every (dtype, K ≤ 11) compiles; fp32 stays spill-free at every K (16-bit types spill a few
    bytes at some K under the 128-register cap, double at K = 11: see docs/cuda.md)."""
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("long nvcc sweep (~8 min on 2 cores): run with -m slow")
    profiles = static_profiles([arch], [dtype], kernel_sizes=(1, 3, 5, 7, 9, 11))
    assert not [p for p in profiles if p.error], [p.error for p in profiles if p.error]
    if dtype == "float32":
        spills = [p for p in profiles if p.spill_store_bytes or p.spill_load_bytes]
        assert not spills, _ptxas_table(spills)


# ---------------------------------------------------------------------------------------------
# Host harness: every thread of a small grid, against the float64 reference
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def harness(tmp_path_factory) -> Path:
    """The host harness, built once: nvcc compiles the kernels' __host__ __device__ functions for the CPU."""
    if NVCC is None:
        pytest.skip("nvcc not found")
    binary = tmp_path_factory.mktemp("cuda_harness") / "involution_harness"
    # -O0: the cases are tiny, and the harness then builds in a third of the -O2 time.
    cmd = [NVCC, "-x", "cu", "-std=c++17", "-O0", "-arch=sm_80", f"-I{KERNEL_SOURCE.parent}", str(HARNESS_SOURCE),
           "-o", str(binary)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stdout}\n{done.stderr}"
    return binary


TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16}
RESULTS = {
    "fwd": ("fwd_simple", "fwd_tiled", "fwd_tiled_general"),
    "grad_x": ("gx_simple", "gx_tiled", "gx_tiled_general"),
    "grad_w": ("gw_simple", "gw_tiled", "gw_tiled_general"),
}

# id: (dtype, K, B, C, H, W, G, stride, dilation, (tx, ty), (txw, tyw)).
# Blocks are small so that every image spans several tiles, the last ones partial (borders).
HARNESS_CASES = {
    "K7-G1-Cg20-border": ("float32", 7, 2, 20, 13, 11, 1, 1, 1, (2, 4), (4, 4)),  # Cg = 20: chunks 8, 8, 4
    "K7-G=C": ("float32", 7, 1, 6, 9, 10, 6, 1, 1, (2, 2), (8, 2)),
    "K1": ("float32", 1, 2, 8, 5, 7, 2, 1, 1, (2, 2), (4, 4)),
    "K1-s2": ("float32", 1, 1, 4, 7, 6, 1, 2, 1, (1, 2), (2, 2)),
    "K3-s2": ("float32", 3, 2, 12, 11, 9, 3, 2, 1, (2, 4), (4, 2)),
    "K5-d2": ("float32", 5, 1, 16, 12, 13, 2, 1, 2, (2, 4), (4, 4)),
    "K7-s2-d2": ("float64", 7, 1, 8, 15, 14, 4, 2, 2, (2, 2), (4, 4)),
    "K3-s3-batch1": ("float32", 3, 1, 3, 10, 10, 1, 3, 1, (1, 1), (1, 1)),
    "K7-loader-blocks": ("float32", 7, 1, 16, 20, 22, 2, 1, 1, None, None),  # the planner's own blocks
    "K7-fp64-G=C": ("float64", 7, 2, 4, 8, 9, 4, 1, 1, (2, 4), (4, 4)),
    "K7-fp16-border": ("float16", 7, 2, 16, 13, 11, 2, 1, 1, (2, 4), (4, 4)),
    "K3-fp16-s2": ("float16", 3, 1, 8, 11, 10, 2, 2, 1, (2, 2), (4, 2)),
    "K7-bf16-G1": ("bfloat16", 7, 1, 12, 12, 12, 1, 1, 1, (2, 4), (8, 2)),
    "K5-bf16-d2-G=C": ("bfloat16", 5, 1, 4, 11, 12, 4, 1, 2, (1, 4), (4, 4)),
}


def _to_raw(t: torch.Tensor) -> np.ndarray:
    t = t.contiguous()
    return (t.view(torch.int16) if t.dtype in (torch.float16, torch.bfloat16) else t).numpy()


def _from_raw(path: Path, dtype: torch.dtype, shape) -> torch.Tensor:
    storage = {torch.float32: np.float32, torch.float64: np.float64}.get(dtype, np.int16)
    t = torch.from_numpy(np.fromfile(path, dtype=storage))
    return (t.view(dtype) if dtype in (torch.float16, torch.bfloat16) else t).reshape(shape)


def _loader_blocks(dtype, K, B, C, H, W, G, stride, dilation):
    fwd = cuda_loader.plan("tiled", "fwd", dtype, B, C, G, H, W, K, stride, dilation)
    gw = cuda_loader.plan("tiled", "bwd_kernel", dtype, B, C, G, H, W, K, stride, dilation)
    return fwd.block[:2], gw.block[:2]


@needs_nvcc
@pytest.mark.parametrize("case_id", list(HARNESS_CASES))
def test_host_harness_matches_float64_reference(harness, tmp_path, case_id):
    dtype, K, B, C, H, W, G, s, d, block, block_w = HARNESS_CASES[case_id]
    if block is None:
        block, block_w = _loader_blocks(dtype, K, B, C, H, W, G, s, d)
    tdtype = TORCH_DTYPES[dtype]
    Ho, Wo = out_size(H, K, s, d), out_size(W, K, s, d)
    gen = torch.Generator().manual_seed(sum(map(ord, case_id)))
    x = torch.randn(B, C, H, W, generator=gen, dtype=torch.float64).to(tdtype)
    w = (torch.randn(B, G, K * K, Ho, Wo, generator=gen, dtype=torch.float64) / K).to(tdtype)
    gout = torch.randn(B, C, Ho, Wo, generator=gen, dtype=torch.float64).to(tdtype)
    for name, tensor in (("x", x), ("w", w), ("gout", gout)):
        _to_raw(tensor).tofile(tmp_path / f"{name}.bin")
    cmd = [str(harness), "run", dtype, *map(str, (K, B, C, H, W, G, s, d, *block, *block_w)), str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stderr}"

    x64, w64, g64 = x.double(), w.double(), gout.double()
    reference = {"fwd": involution_reference(x64, w64, K, s, d)}
    reference["grad_x"], reference["grad_w"] = involution_reference_backward(g64, x64, w64, K, s, d)
    baseline = {"fwd": None, "grad_x": None, "grad_w": None}
    if tdtype in (torch.float16, torch.bfloat16):  # the eager reference run in the same precision
        baseline["fwd"] = involution_reference(x, w, K, s, d)
        baseline["grad_x"], baseline["grad_w"] = involution_reference_backward(gout, x, w, K, s, d)
    for quantity, names in RESULTS.items():
        for name in names:
            actual = _from_raw(tmp_path / f"{name}.bin", tdtype, reference[quantity].shape)
            assert_close(f"{case_id} {name}", actual, reference[quantity], baseline[quantity])


@needs_nvcc
def test_harness_fails_when_a_kernel_is_wrong(harness, tmp_path):
    """The comparison can fail: a grad_w taken against the wrong gout is caught."""
    dtype, K, B, C, H, W, G, s, d, block, block_w = HARNESS_CASES["K3-s2"]
    Ho, Wo = out_size(H, K, s, d), out_size(W, K, s, d)
    gen = torch.Generator().manual_seed(1)
    x, w = torch.randn(B, C, H, W, generator=gen), torch.randn(B, G, K * K, Ho, Wo, generator=gen)
    gout = torch.randn(B, C, Ho, Wo, generator=gen)
    for name, tensor in (("x", x), ("w", w), ("gout", gout)):
        _to_raw(tensor).tofile(tmp_path / f"{name}.bin")
    subprocess.run([str(harness), "run", dtype, *map(str, (K, B, C, H, W, G, s, d, *block, *block_w)),
                    str(tmp_path)], check=True, capture_output=True)
    _, grad_w = involution_reference_backward(gout.double().flip(-1), x.double(), w.double(), K, s, d)
    with pytest.raises(AssertionError, match="MISMATCH"):
        assert_close("gw_tiled", _from_raw(tmp_path / "gw_tiled.bin", torch.float32, grad_w.shape), grad_w)


@needs_nvcc
def test_loader_shared_memory_matches_kernel_arithmetic(harness):
    """The Python planner sizes the dynamic buffer exactly as the kernel's tiled_shared_elements does."""
    checks = [("float32", 7, 1, 1, 16, 32, "gather"), ("float32", 7, 1, 1, 16, 32, "scatter"),
              ("float16", 7, 2, 1, 8, 32, "gather"), ("bfloat16", 5, 2, 1, 8, 16, "scatter"),
              ("float64", 3, 1, 2, 4, 8, "gather"), ("float64", 7, 2, 2, 16, 32, "scatter"),
              ("float32", 1, 3, 1, 1, 1, "scatter"), ("float16", 5, 1, 3, 2, 4, "gather")]
    for dtype, K, s, d, tile_h, tile_w, kind in checks:
        done = subprocess.run([str(harness), "geometry", dtype, *map(str, (K, s, d, tile_h, tile_w)), kind],
                              capture_output=True, text=True, check=True)
        elements = int(done.stdout)
        acc_bytes = 8 if dtype == "float64" else 4
        assert cuda_loader.tiled_shared_bytes(dtype, K, s, d, tile_h, tile_w, kind) == elements * acc_bytes, (
            dtype, K, s, d, tile_h, tile_w, kind)


def test_loader_constants_mirror_the_kernel_source():
    source = KERNEL_SOURCE.read_text()
    assert f"constexpr int OUTPUTS_PER_THREAD = {cuda_loader.OUTPUTS_PER_THREAD};" in source
    assert f"constexpr int STAGE_LOAD_BYTES = {cuda_loader.STAGE_LOAD_BYTES};" in source
    assert re.search(r"struct Chunk \{ static constexpr int value = 8; \}", source)
    assert re.search(rf"struct Chunk<double> \{{ static constexpr int value = {cuda_loader.channel_chunk('float64')}; \}}",
                     source)
    assert f"#define SIMPLE_THREADS {cuda_loader.SIMPLE_BLOCK}\n" in source
    assert f"#define TILED_THREADS {cuda_loader.TILED_THREADS}\n" in source
    for name in cuda_loader._ENTRY_POINTS:
        assert re.search(rf'extern "C" __global__ void __launch_bounds__\([^)]*\)\s+{name}\(', source), name


# ---------------------------------------------------------------------------------------------
# Loader and registration without a GPU
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["cuda", "cuda-simple"])
def test_variants_registered_with_reasons(name):
    variant = get(name, "involution")
    assert variant.devices == ("cuda",) and {"float32", "bfloat16", "float16"} <= set(variant.dtypes)
    assert variant.supports_backward and name in APPLY
    if not torch.cuda.is_available():
        assert any("CUDA device" in r for r in variant.unavailable_reasons())
    assert any("K=13" in r for r in variant.why_not(Case(B=1, C=4, H=8, W=8, K=13, G=1, device="cuda")))
    assert any("dtype int8 not supported" in r for r in variant.why_not(Case(B=1, C=4, H=8, W=8, dtype="int8")))


def test_requirements_name_cupy_and_the_extra_when_cupy_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` now raises ImportError
    cuda_loader._cupy_reason.cache_clear()
    try:
        reasons = cuda_loader.requirements()
    finally:
        cuda_loader._cupy_reason.cache_clear()
    assert len(reasons) == 1 and "CuPy is not installed" in reasons[0] and "invobench[cuda]" in reasons[0]


def test_cpu_tensors_are_rejected_with_the_fix():
    x, kernel = torch.randn(1, 4, 5, 5), torch.randn(1, 1, 9, 5, 5)
    for name in ("cuda", "cuda-simple"):
        with pytest.raises(ValueError, match=r"runs on CUDA tensors, but x is on cpu; move the inputs with \.cuda\(\)"):
            APPLY[name](x, kernel, 3, 1, 1)
    with pytest.raises(ValueError, match="cannot run"):
        involution(x, kernel, kernel_size=3, variant="cuda")


def test_unsupported_dtype_and_kernel_size_are_named():
    with pytest.raises(TypeError, match=r"dtype=int32 is not supported \(supported: float32"):
        APPLY["cuda"](torch.zeros(1, 4, 5, 5, dtype=torch.int32), torch.zeros(1, 1, 9, 5, 5, dtype=torch.int32), 3, 1, 1)
    with pytest.raises(ValueError, match=r"kernel_size=13 is not supported by the CUDA kernels \(odd K from 1 to 11"):
        APPLY["cuda"](torch.zeros(1, 4, 5, 5), torch.zeros(1, 1, 169, 5, 5), 13, 1, 1)


def test_plan_paper_shape_uses_tiled_unit_kernels_under_48k():
    args = ("float32", 32, 256, 16, 56, 56, 7, 1, 1, 227 * 1024)
    fwd, gx, gw = (cuda_loader.plan("tiled", op, *args) for op in ("fwd", "bwd_input", "bwd_kernel"))
    assert (fwd.kernel, gx.kernel, gw.kernel) == (
        "involution_fwd_tiled_unit", "involution_bwd_input_tiled_unit", "involution_bwd_kernel_tiled_unit")
    assert fwd.block == (8, 16, 1) and fwd.grid == (2 * 4, 16, 32)  # 56/32 → 2 column tiles, 56/16 → 4 row tiles
    assert all(launch.shared_bytes <= 48 * 1024 for launch in (fwd, gx, gw))
    assert cuda_loader.plan("simple", "fwd", *args) == cuda_loader.Launch(
        "involution_fwd_simple", (-(-32 * 256 * 56 * 56 // 256), 1, 1), (256, 1, 1), 0)


def test_plan_falls_back_to_simple_when_no_tile_fits():
    wide = cuda_loader.plan("tiled", "fwd", "float32", 1, 16, 1, 200, 200, 11, 1, 8, 100 * 1024)
    assert wide.kernel == "involution_fwd_simple"
    many_groups = cuda_loader.plan("tiled", "bwd_kernel", "float32", 1, 70000, 70000, 8, 8, 3, 1, 1)
    assert many_groups.kernel == "involution_bwd_kernel_simple"
    strided = cuda_loader.plan("tiled", "fwd", "float32", 2, 64, 4, 56, 56, 7, 2, 1, 227 * 1024)
    assert strided.kernel == "involution_fwd_tiled" and strided.shared_bytes <= 48 * 1024


def test_launch_info_records_the_launches():
    info = cuda_loader.launch_info("tiled", Case(B=2, C=16, H=9, W=9, K=3, G=4, device="cuda"))
    assert info["design"] == "tiled" and info["channel_chunk"] == 8
    assert info["fwd"]["kernel"] == "involution_fwd_tiled_unit" and info["fwd"]["grid"][1:] == (4, 2)
    assert cuda_loader.launch_info("simple", Case(B=1, C=4, H=5, W=5, K=3))["fwd"]["block"] == (256, 1, 1)


def test_compile_error_message_shows_the_source_line():
    source = "int a;\nint b = undefined_thing;\nint c;\n"
    log_text = 'involution_cuda.cu(2): error: identifier "undefined_thing" is undefined\n1 error detected'
    message = cuda_loader.format_compile_error(log_text, source, "float32 K=7 sm_90")
    assert "involution_cuda.cu:2: int b = undefined_thing;" in message
    assert "float32 K=7 sm_90" in message and "Fix:" in message and log_text.splitlines()[0] in message


# ---------------------------------------------------------------------------------------------
# NVRTC (needs CuPy and the NVRTC library, not a GPU)
# ---------------------------------------------------------------------------------------------

def _nvrtc_skip_reason() -> str | None:
    reason = cuda_loader._cupy_reason() or cuda_loader._nvrtc_reason()
    if reason:
        return reason
    if cuda_loader.cuda_include_dir() is None:
        return "CUDA headers not found"
    return None


needs_nvrtc = pytest.mark.skipif(_nvrtc_skip_reason() is not None,
                                 reason=f"NVRTC compile tests need CuPy and NVRTC: {_nvrtc_skip_reason()}")


@needs_nvrtc
def test_nvrtc_compiles_and_caches_the_module(tmp_path):
    path = cuda_loader.compile_module("float32", 3, 90, cache_dir=tmp_path)
    assert path.suffix == ".cubin" and path.read_bytes()[:4] == b"\x7fELF"
    stamp = path.stat().st_mtime_ns
    assert cuda_loader.compile_module("float32", 3, 90, cache_dir=tmp_path) == path
    assert path.stat().st_mtime_ns == stamp  # served from the disk cache, not recompiled


@needs_nvrtc
def test_nvrtc_compile_error_names_the_source_line(tmp_path):
    source = KERNEL_SOURCE.read_text().replace("constexpr int OUTPUTS_PER_THREAD = 4;",
                                               "constexpr int OUTPUTS_PER_THREAD = 4 + not_declared;")
    with pytest.raises(cuda_loader.NvrtcCompileError, match=r"OUTPUTS_PER_THREAD = 4 \+ not_declared"):
        cuda_loader.compile_module("float32", 1, 80, source=source, cache_dir=tmp_path)


def _cubin_arch(binary: bytes) -> int:
    """The SM a CUDA ELF (cubin) was built for: its e_flags hold it in bits 8-15 from ELF ABI version 8
    (CUDA 12.x and later), in bits 0-7 before."""
    assert binary[:4] == b"\x7fELF" and binary[7] == 0x41, "not a CUDA ELF (OSABI 0x41)"
    flags = int.from_bytes(binary[0x30:0x34], "little")  # 64-bit ELF: e_flags at offset 48
    return (flags >> 8) & 0xFF if binary[8] >= 8 else flags & 0xFF


@needs_nvrtc
@pytest.mark.parametrize("arch", [80, 90])
@pytest.mark.parametrize("dtype", cuda_loader.DTYPES)
def test_nvrtc_compiles_the_loaders_source_and_options_without_the_driver(monkeypatch, tmp_path, dtype, arch):
    """What a GPU machine compiles on first use, compiled here: the loader's own call (compile_module), so the
    source is the shipped file and the options are nvrtc_options'; the driver and the device are never asked."""
    import cupy
    from cupy.cuda import nvrtc

    def refuse(*args, **kwargs):
        raise AssertionError("the NVRTC compile asked the CUDA driver or the device")

    monkeypatch.setattr(cupy.cuda.runtime, "getDeviceCount", refuse)
    monkeypatch.setattr(cupy.cuda.runtime, "getDevice", refuse)
    monkeypatch.setattr(torch.cuda, "get_device_capability", refuse)
    seen = {}
    create, compile_ = nvrtc.createProgram, nvrtc.compileProgram
    monkeypatch.setattr(nvrtc, "createProgram", lambda src, name, *a: seen.update(source=src, name=name) or create(src, name, *a))
    monkeypatch.setattr(nvrtc, "compileProgram", lambda prog, opts: seen.update(options=list(opts)) or compile_(prog, opts))

    path = cuda_loader.compile_module(dtype, 7, arch, cache_dir=tmp_path)

    assert seen["source"] == KERNEL_SOURCE.read_text() and seen["name"] == KERNEL_SOURCE.name
    assert seen["options"] == cuda_loader.nvrtc_options(dtype, 7, f"sm_{arch}", cuda_loader.cuda_include_dir())
    assert f"-DINVOLUTION_SCALAR={cuda_loader.SCALAR_TYPES[dtype]}" in seen["options"]
    binary = path.read_bytes()
    assert path.suffix == ".cubin" and _cubin_arch(binary) == arch
    missing = [name for name in cuda_loader._ENTRY_POINTS if name.encode() + b"\0" not in binary]
    assert not missing, f"entry points missing from the {dtype} sm_{arch} cubin: {missing}"


@needs_nvrtc
def test_nvrtc_targets_ptx_for_architectures_it_does_not_know():
    assert cuda_loader._nvrtc_target(90) == ("cubin", "sm_90")
    kind, target = cuda_loader._nvrtc_target(999)
    assert kind == "ptx" and target.startswith("compute_")


# ---------------------------------------------------------------------------------------------
# On a GPU
# ---------------------------------------------------------------------------------------------

def _gpu_skip_reason() -> str | None:
    if not torch.cuda.is_available():
        return "no CUDA device (torch.cuda.is_available() is False)"
    reasons = cuda_loader.requirements()
    return "; ".join(reasons) if reasons else None


needs_gpu = pytest.mark.skipif(_gpu_skip_reason() is not None, reason=str(_gpu_skip_reason()))

GPU_CASES = {
    "paper-K7-G16": (2, 64, 28, 28, 7, 4, 1, 1),
    "border-odd": (2, 20, 13, 11, 7, 1, 1, 1),
    "G=C": (1, 8, 9, 10, 3, 8, 1, 1),
    "K1": (2, 8, 7, 5, 1, 2, 1, 1),
    "s2": (2, 32, 15, 14, 7, 2, 2, 1),
    "d2": (1, 16, 12, 13, 5, 2, 1, 2),
    "K11": (1, 16, 20, 20, 11, 1, 1, 1),
}


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("case_id", list(GPU_CASES))
@pytest.mark.parametrize("variant", ["cuda", "cuda-simple"])
def test_gpu_forward_and_backward_match_reference(variant, case_id, dtype):
    B, C, H, W, K, G, s, d = GPU_CASES[case_id]
    case = Case(B=B, C=C, H=H, W=W, K=K, G=G, stride=s, dilation=d, dtype=dtype, device="cuda")
    from invobench.ops.involution import make_inputs

    x, kernel = make_inputs(case, requires_grad=True)
    out = APPLY[variant](x, kernel, K, s, d)
    grad_out = torch.randn_like(out)
    grad_x, grad_w = torch.autograd.grad(out, (x, kernel), grad_out)
    x64, w64, g64 = x.detach().double(), kernel.detach().double(), grad_out.double()
    ref = involution_reference(x64, w64, K, s, d)
    ref_gx, ref_gw = involution_reference_backward(g64, x64, w64, K, s, d)
    low = x.dtype in (torch.float16, torch.bfloat16)
    base = involution_reference(x.detach(), kernel.detach(), K, s, d) if low else None
    base_gx, base_gw = (involution_reference_backward(grad_out, x.detach(), kernel.detach(), K, s, d)
                        if low else (None, None))
    assert_close(f"{variant} {case_id} fwd", out, ref, base)
    assert_close(f"{variant} {case_id} grad_x", grad_x, ref_gx, base_gx)
    assert_close(f"{variant} {case_id} grad_w", grad_w, ref_gw, base_gw)


@pytest.mark.gpu
@needs_gpu
def test_gpu_runs_on_torchs_current_stream_without_copies():
    x = torch.randn(2, 32, 30, 30, device="cuda")
    kernel = torch.randn(2, 2, 49, 30, 30, device="cuda") / 7
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        torch.cuda._sleep(50_000_000)  # keeps the side stream busy: a launch on another stream would race
        out = APPLY["cuda"](x, kernel, 7, 1, 1)
        x.add_(1.0)  # on the side stream, after the kernel: must not change `out`
    torch.cuda.current_stream().wait_stream(side)
    assert_close("cuda on a side stream", out, involution_reference((x - 1.0).double(), kernel.double(), 7, 1, 1))


@pytest.mark.gpu
@needs_gpu
def test_gpu_channels_last_input_and_torch_compile():
    x = torch.randn(1, 16, 14, 14, device="cuda").contiguous(memory_format=torch.channels_last)
    kernel = torch.randn(1, 2, 9, 14, 14, device="cuda") / 3
    ref = involution_reference(x.double(), kernel.double(), 3, 1, 1)
    assert_close("cuda channels_last", APPLY["cuda"](x, kernel, 3, 1, 1), ref)
    compiled = torch.compile(lambda a, b: APPLY["cuda"](a, b, 3, 1, 1) * 2, fullgraph=True)
    assert_close("cuda under torch.compile", compiled(x, kernel), 2 * ref)
