"""The Triton involution variants without a GPU (issue 5).

- Numerics under Triton's interpreter (TRITON_INTERPRET=1, CPU tensors) against the float64
  reference, forward and backward through the registered custom op and autograd.
  Triton reads TRITON_INTERPRET when @triton.jit decorates, i.e. at import; the launcher reads it
  at each call instead (`triton.interpreting()`), so `monkeypatch.setenv` is enough here and the
  variable is gone again for the rest of the test session.
- Ahead-of-time compilation of every kernel and autotune configuration for sm_80 and sm_90 in fp32
  and bf16, with ptxas's figures, plus the specialisations the interpreter cannot vouch for (64-bit
  offsets, stride 2, dilation, K = 11, chunked channel reduction).
- Bad input: float64, CPU tensors without the interpreter, K > 11, tensors on different devices.
"""
from __future__ import annotations

import time

import pytest
import torch

from invobench.ops.involution import APPLY, involution, variant_for
from invobench.ops.involution.reference import involution_reference
from invobench.registry import Case, get
from invobench.testing import assert_close
from invobench.testing import forward_backward as _forward_backward
from invobench.testing import involution_problem as _inputs
from invobench.testing import involution_reference_outputs as _reference

triton = pytest.importorskip("triton", reason="triton is not installed")
from invobench.ops.involution import triton as tk  # noqa: E402
from invobench.ops.involution import triton_static  # noqa: E402

VARIANTS = ("triton", "triton-simple")


@pytest.fixture
def interpreter(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")


@pytest.fixture
def no_interpreter(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)


# (B, C, H, W, G, K, stride, dilation): small enough for the numpy interpreter
SHAPES = {
    "odd_hw": (2, 8, 9, 11, 2, 3, 1, 1),
    "stride2": (1, 6, 9, 8, 3, 3, 2, 1),
    "dilation2": (1, 4, 10, 9, 2, 3, 1, 2),
    "K1": (2, 4, 5, 6, 2, 1, 1, 1),
    "K7_G_eq_C": (1, 4, 8, 9, 4, 7, 1, 1),
    "K7_G1_stride2": (1, 3, 9, 10, 1, 7, 2, 1),
    "Cg64_chunked": (1, 64, 5, 6, 1, 3, 1, 1),  # Cg > BLOCK_C: several channel blocks / reduction chunks
}





def _check_against_reference(variant, shape, dtype):
    B, C, H, W, G, K, s, d = shape
    x64, w64, g64 = _inputs(shape)
    ref = _reference(shape, x64, w64, g64)
    apply = APPLY[variant]
    got = _forward_backward(lambda x, w: apply(x, w, K, s, d), x64.to(dtype), w64.to(dtype), g64)
    baseline = [None] * 3
    if dtype in (torch.bfloat16, torch.float16):  # the eager reference run in the same low precision
        xl, wl, gl = x64.to(dtype), w64.to(dtype), g64.to(dtype)
        baseline = _reference(shape, xl, wl, gl)
    for name, actual, reference, base in zip(("out", "grad_x", "grad_kernel"), got, ref, baseline):
        assert actual.dtype == dtype, f"{name} is {actual.dtype}, expected {dtype}"
        assert_close(f"{variant} {name} {shape}", actual, reference, base)


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_triton_fp32_matches_reference(interpreter, shape):
    _check_against_reference("triton", shape, torch.float32)


@pytest.mark.parametrize("cfg", tk.TILED_CONFIGS, ids=lambda c: f"P{c.block_p}w{c.num_warps}")
def test_every_tiled_config_matches_reference(interpreter, monkeypatch, cfg):
    """Each autotune configuration on a plane of several pixel tiles (the interpreter otherwise runs the widest one)."""
    monkeypatch.setattr(tk, "TILED_CONFIGS", (cfg,))
    monkeypatch.setattr(tk, "_TUNED", {})
    monkeypatch.setattr(tk, "_TUNED_HOW", {})
    _check_against_reference("triton", (1, 4, 24, 25, 2, 3, 1, 1), torch.float32)  # 600 pixels: 2-10 tiles
    if cfg.block_c(64) < 64:
        _check_against_reference("triton", SHAPES["Cg64_chunked"], torch.float32)  # several channel blocks


LOW_PRECISION = [("odd_hw", torch.bfloat16), ("odd_hw", torch.float16), ("stride2", torch.bfloat16),
                 ("stride2", torch.float16), ("K7_G_eq_C", torch.bfloat16), ("Cg64_chunked", torch.float16)]


@pytest.mark.parametrize("name,dtype", LOW_PRECISION, ids=[f"{n}-{str(d)[6:]}" for n, d in LOW_PRECISION])
def test_triton_low_precision_matches_reference(interpreter, name, dtype):
    _check_against_reference("triton", SHAPES[name], dtype)


@pytest.mark.parametrize("name", ["odd_hw", "stride2", "dilation2", "K1"])
def test_triton_simple_matches_reference(interpreter, name):
    _check_against_reference("triton-simple", SHAPES[name], torch.float32)


def test_triton_simple_bf16_matches_reference(interpreter):
    _check_against_reference("triton-simple", SHAPES["K7_G1_stride2"], torch.bfloat16)


@pytest.mark.parametrize("variant", VARIANTS)
def test_int64_offsets_path_matches_int32(interpreter, monkeypatch, variant):
    """The 64-bit-offset specialisation (taken for tensors of ≥ 2³¹ elements) computes the same values."""
    shape = SHAPES["stride2"]
    K, s, d = shape[5:]
    x, w, g = (t.float() for t in _inputs(shape))
    apply = APPLY[variant]
    expected = _forward_backward(lambda x, w: apply(x, w, K, s, d), x, w, g)
    monkeypatch.setattr(tk, "_needs_int64", lambda *tensors: True)
    got = _forward_backward(lambda x, w: apply(x, w, K, s, d), x, w, g)
    for name, a, b in zip(("out", "grad_x", "grad_kernel"), got, expected):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=lambda m: f"{variant} {name}: {m}")


def test_needs_int64_threshold():
    small = torch.empty(0)
    big = torch.empty(2**31, dtype=torch.bool, device="meta")
    assert not tk._needs_int64(small, torch.empty(2**31 - 1, dtype=torch.bool, device="meta"))
    assert tk._needs_int64(small, big)


def test_layouts_are_copied_to_nchw(interpreter):
    """channels_last and non-contiguous inputs go through a .contiguous() copy and give the same result."""
    shape = SHAPES["odd_hw"]
    K, s, d = shape[5:]
    x, w, _ = (t.float() for t in _inputs(shape))
    expected = APPLY["triton"](x, w, K, s, d)
    for layout in (x.contiguous(memory_format=torch.channels_last), x.transpose(2, 3).contiguous().transpose(2, 3)):
        torch.testing.assert_close(APPLY["triton"](layout, w, K, s, d), expected, rtol=0, atol=0)


def test_public_api_and_layer_use_triton(interpreter):
    from invobench.nn import Involution2d

    x, w, _ = (t.float() for t in _inputs(SHAPES["K1"]))
    out = involution(x, w, kernel_size=1, variant="triton")
    assert_close("involution(variant='triton')", out, involution_reference(x.double(), w.double(), 1))

    torch.manual_seed(0)
    layer = Involution2d(8, kernel_size=3, stride=1, group_channels=4, reduction=4, variant="triton")
    eager = Involution2d(8, kernel_size=3, stride=1, group_channels=4, reduction=4, variant="eager")
    eager.load_state_dict(layer.state_dict())
    xl = torch.randn(2, 8, 7, 6)
    a, b = xl.clone().requires_grad_(), xl.clone().requires_grad_()
    out_t, out_e = layer(a), eager(b)
    out_t.sum().backward()
    out_e.sum().backward()
    torch.testing.assert_close(out_t, out_e, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(layer.span.weight.grad, eager.span.weight.grad, rtol=1e-4, atol=1e-4)


def test_custom_op_is_counted_by_flop_counter(interpreter):
    from torch.utils.flop_counter import FlopCounterMode

    B, C, H, W, G, K, s, d = SHAPES["K1"]
    x, w, _ = (t.float() for t in _inputs(SHAPES["K1"]))
    with FlopCounterMode(display=False) as counter:
        APPLY["triton"](x, w, K, s, d)
    assert counter.get_total_flops() == 2 * B * C * H * W * K * K
    assert hasattr(torch.ops.invobench, "involution_triton") and hasattr(torch.ops.invobench, "involution_triton_simple")


def test_info_records_chosen_configuration(interpreter):
    B, C, H, W, G, K, s, d = shape = SHAPES["odd_hw"]
    case = Case(B=B, C=C, H=H, W=W, K=K, G=G, stride=s, dilation=d, dtype="float32", device="cpu")
    x, w, g = (t.float() for t in _inputs(shape))
    _forward_backward(lambda x, w: APPLY["triton"](x, w, K, s, d), x, w, g)
    info = get("triton", "involution").info(case)
    cfg = max(tk.TILED_CONFIGS, key=lambda c: c.block_p)  # the interpreter's choice: fewest programs
    for kernel in ("fwd", "bwd_input", "bwd_kernel"):
        assert info[f"config_{kernel}"] == cfg.label(C // G)
        assert info[f"config_{kernel}_chosen_by"] == "interpreter (untimed)"
    assert get("triton", "involution").info(case.replace(B=B + 1))["config_fwd"] == "not launched yet"


def test_interpreter_env_is_read_at_call_time(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert not tk.interpreting()
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert tk.interpreting()
    case = Case(B=1, C=4, H=5, W=5, K=3, G=2, device="cpu")
    assert get("triton", "involution").why_not(case) == []


def test_block_c_respects_budget():
    for cfg in tk.TILED_CONFIGS:
        for cg in (1, 3, 16, 64, 256):
            bc = cfg.block_c(cg)
            assert bc & (bc - 1) == 0 and 1 <= bc <= tk.MAX_BLOCK_C and bc * cfg.block_p <= tk.TILE_BUDGET
            assert bc >= min(triton.next_power_of_2(cg), tk.MAX_BLOCK_C, tk.TILE_BUDGET // cfg.block_p)


# ------------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_float64_points_to_eager(interpreter, variant):
    spec = get(variant, "involution")
    reasons = spec.why_not(Case(B=1, C=4, H=5, W=5, K=3, G=2, dtype="float64"))
    assert any("eager" in r and "float64" in r for r in reasons), reasons
    x, w, _ = _inputs(SHAPES["K1"])
    with pytest.raises(ValueError, match="float64.*variant='eager'"):
        APPLY[variant](x, w, 1, 1, 1)


@pytest.mark.parametrize("variant", VARIANTS)
def test_cpu_without_interpreter_is_refused(no_interpreter, variant):
    spec = get(variant, "involution")
    reasons = spec.why_not(Case(B=1, C=4, H=5, W=5, K=3, G=2, device="cpu"))
    assert tk.CPU_NEEDS_INTERPRETER in reasons
    x, w, _ = (t.float() for t in _inputs(SHAPES["K1"]))
    with pytest.raises(ValueError, match="TRITON_INTERPRET=1"):
        APPLY[variant](x, w, 1, 1, 1)
    # `auto` must not pick a variant that would refuse the input
    assert variant_for(x, "auto") not in VARIANTS


@pytest.mark.parametrize("variant", VARIANTS)
def test_kernel_size_above_maximum(interpreter, variant):
    reasons = get(variant, "involution").why_not(Case(B=1, C=4, H=16, W=16, K=13, G=2))
    assert any("maximum of 11" in r for r in reasons), reasons
    x = torch.randn(1, 4, 16, 16)
    w = torch.randn(1, 2, 169, 16, 16)
    with pytest.raises(ValueError, match="kernel_size=13 exceeds"):
        APPLY[variant](x, w, 13, 1, 1)


@pytest.mark.parametrize("variant", VARIANTS)
def test_tensors_on_different_devices(interpreter, variant):
    x = torch.randn(1, 4, 5, 5)
    w = torch.randn(1, 2, 9, 5, 5, device="meta")
    with pytest.raises(ValueError, match="different devices"):
        (tk.involution_triton if variant == "triton" else tk.involution_triton_simple)(x, w, 3, 1, 1)
    with pytest.raises(ValueError, match="device mismatch"):  # the public API says it first
        involution(x, w, kernel_size=3, variant=variant)


def test_launch_reasons_lists_every_problem(no_interpreter):
    reasons = tk.launch_reasons({"x": torch.zeros(1, dtype=torch.float64), "kernel": torch.zeros(1, device="meta")}, 13)
    text = "; ".join(reasons)
    for expected in ("different devices", "variant='eager'", "dtype mismatch", "TRITON_INTERPRET=1", "maximum of 11"):
        assert expected in text, text


# ------------------------------------------------------------------------------------------------
# Ahead-of-time compilation for sm_80 / sm_90 and ptxas figures
# ------------------------------------------------------------------------------------------------

ARCHS = [80, 90]
AOT_DTYPES = ["float32", "bfloat16"]


@pytest.fixture(scope="module")
def aot_cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("invobench_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INVOBENCH_CACHE_DIR", str(path))
        yield path


@pytest.fixture(scope="module")
def profiles(aot_cache):
    return triton_static.static_profiles(ARCHS, AOT_DTYPES)


def test_every_kernel_and_config_compiles_for_sm80_sm90(profiles):
    expected = set()
    for dtype in AOT_DTYPES:
        for build in triton_static.kernel_builds(dtype):
            for cc in ARCHS:
                expected.add((build.name, build.config_label, f"sm_{cc}", dtype))
    got = {(p.kernel, p.config, p.arch, p.dtype) for p in profiles}
    assert got == expected
    assert len(expected) == len(ARCHS) * len(AOT_DTYPES) * 3 * (len(tk.TILED_CONFIGS) + len(tk.SIMPLE_CONFIGS))
    failed = [f"{p.kernel} [{p.config}] {p.arch} {p.dtype}: {p.error}" for p in profiles if p.error]
    assert not failed, "\n".join(failed)


def test_ptxas_figures_are_sane(profiles):
    for p in profiles:
        where = f"{p.kernel} [{p.config}] {p.arch} {p.dtype}"
        assert p.backend == "triton"
        assert p.registers is not None and 8 <= p.registers <= 255, f"{where}: registers={p.registers}"
        assert p.shared_bytes is not None and 0 <= p.shared_bytes <= 228 * 1024, f"{where}: smem={p.shared_bytes}"
        # none of the shipped configurations spills at the representative shape: a change that makes one
        # spill is a performance regression this test should catch
        assert p.spill_store_bytes == 0 and p.spill_load_bytes == 0, (
            f"{where}: spills {p.spill_store_bytes}/{p.spill_load_bytes} bytes")
        assert p.stack_bytes == 0, f"{where}: stack frame {p.stack_bytes} bytes"


def test_static_profiles_are_cached(profiles, aot_cache):
    assert any(aot_cache.rglob("*.json"))
    start = time.perf_counter()
    again = triton_static.static_profiles(ARCHS, AOT_DTYPES)
    assert time.perf_counter() - start < 20
    assert [p.as_dict() for p in again] == [p.as_dict() for p in profiles]


def test_own_ptxas_run_agrees_with_tritons(profiles):
    """Figures read from Triton's ptxas log and from our own ptxas run (used on a Triton cache hit) agree."""
    from triton.backends.compiler import GPUTarget
    from invobench.ops.involution.ptxas import parse_ptxas_verbose

    build = next(b for b in triton_static.kernel_builds("float32") if b.name == "involution_fwd")
    compiled = triton.compile(triton_static.ast_source(build, 90), target=GPUTarget("cuda", 90, 32),
                              options={"num_warps": build.num_warps})
    ours = parse_ptxas_verbose(triton_static.run_ptxas(compiled.asm["ptx"], 90))
    recorded = next(p for p in profiles if p.kernel == build.name and p.config == build.config_label
                    and p.arch == "sm_90" and p.dtype == "float32")
    assert ours["registers"] == recorded.registers
    assert ours["spill_store_bytes"] == recorded.spill_store_bytes


def _variant_build(build, **constexprs):
    return triton_static.KernelBuild(build.name, build.kernel, build.config_label, build.num_warps,
                                     dict(build.args), dict(build.constexprs, **constexprs))


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_specialisations_compile_for_sm90(aot_cache, dtype):
    """What the interpreter can't vouch for (it does not type-check like the compiler): 64-bit offsets,
    stride 2, dilation 2, K = 11 and the chunked channel reduction must compile too."""
    builds = triton_static.kernel_builds(dtype)
    picked = [b for b in builds if "num_warps=4" in b.config_label][:3] + \
             [b for b in builds if b.name.endswith("_simple")][:3]
    for build in picked:
        special = _variant_build(build, K=11, STRIDE=2, USE_INT64=True)
        special.args["dilation"] = 2
        if "SINGLE_CHUNK" in build.constexprs:
            special.constexprs["SINGLE_CHUNK"] = False
        figures = triton_static.compile_figures(special, 90)
        assert figures["registers"] and figures["registers"] <= 255, (build.name, figures)
