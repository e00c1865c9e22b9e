"""The C++/OpenMP `cpu` involution variant (issue 9) against the float64 reference.

Forward and backward (through the registered custom op and autograd) over the shapes kernels get
wrong: odd H/W and W tails that are not a multiple of the SIMD width, stride 2 and 3, dilation 2,
K ∈ {1, 3, 7, 11}, G = 1 and G = C, Cg not a multiple of the 8-channel block, batch 1, row blocks
split across threads, channels_last and sliced inputs. float64/float32 are judged by the tolerance
table; bf16/fp16 against 2× the error of the eager reference run in the same precision.
The extension is compiled once for the module (~20 s on a busy 2-core machine; cached after).
"""
from __future__ import annotations

import pytest
import torch

from invobench.ops.involution import APPLY, involution, variant_for
from invobench.registry import Case, get
from invobench.testing import assert_close
from invobench.testing import forward_backward as _forward_backward
from invobench.testing import involution_problem as _inputs
from invobench.testing import involution_reference_outputs as _reference

cpu = pytest.importorskip("invobench.ops.involution.cpu")


@pytest.fixture(scope="module", autouse=True)
def built_extension():
    reasons = cpu.requirements()
    if reasons:
        pytest.skip("; ".join(reasons))
    cpu.library()  # the first-use build, paid once here


# (B, C, H, W, G, K, stride, dilation)
SHAPES = {
    "odd_hw_K3": (2, 8, 9, 11, 2, 3, 1, 1),
    "K7_wide_tail": (1, 32, 13, 19, 2, 7, 1, 1),  # Cg = 16: two full channel blocks; W = 19: 2 vectors + tail
    "K7_Cg12": (2, 24, 10, 9, 2, 7, 1, 1),  # Cg = 12: a full block and a block of 4
    # row pairs take 8 channels per call on AVX-512 builds, 6 elsewhere: blocks of 8 + 7 and 8 + 6 there,
    # 6 + 6 + 3 and 6 + 6 + 2 here
    "K7_Cg15": (1, 30, 9, 10, 2, 7, 1, 1),
    "K5_Cg14": (2, 14, 8, 12, 1, 5, 1, 1),
    "K1_G1": (2, 5, 7, 6, 1, 1, 1, 1),
    "K11_G_eq_C": (1, 6, 13, 12, 6, 11, 1, 1),
    "stride2_K3": (1, 6, 11, 10, 3, 3, 2, 1),
    "stride2_K7": (2, 16, 15, 17, 1, 7, 2, 1),
    "stride3_K5": (1, 8, 14, 13, 2, 5, 3, 1),
    "dilation2_K3": (2, 8, 12, 9, 4, 3, 1, 2),
    "dilation2_stride2_K5": (1, 9, 16, 15, 3, 5, 2, 2),
    "K1_stride2": (1, 4, 7, 8, 4, 1, 2, 1),
    "tiny_image_K7": (1, 16, 3, 2, 1, 7, 1, 1),  # window far larger than the image
    "row_blocks": (1, 16, 40, 23, 1, 5, 1, 1),  # one image: rows split into blocks over the threads
    # wide rows under stride and dilation: several full vectors per phase, and the edge vectors whose taps reach the padding
    "wide_stride2_K5": (1, 8, 9, 45, 2, 5, 2, 1),
    "wide_dilation2_K3": (1, 8, 8, 41, 2, 3, 1, 2),
}






@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("shape", list(SHAPES.values()), ids=list(SHAPES))
def test_matches_float64_reference(shape, dtype):
    K, s, d = shape[5:]
    x64, w64, g64 = _inputs(shape)
    ref = _reference(shape, x64, w64, g64)
    apply = APPLY["cpu"]
    got = _forward_backward(lambda x, w: apply(x, w, K, s, d), x64.to(dtype), w64.to(dtype), g64)
    baseline = [None] * 3
    if dtype in (torch.bfloat16, torch.float16):  # the eager reference run in the same low precision
        baseline = _reference(shape, x64.to(dtype), w64.to(dtype), g64.to(dtype))
    for name, a, r, b in zip(("out", "grad_x", "grad_kernel"), got, ref, baseline):
        assert a.dtype == dtype
        assert_close(f"{name} {dtype} {shape}", a, r, b)


@pytest.mark.parametrize("shape", [(1, 4, 6, 7, 2, 3, 2, 1), (1, 4, 6, 7, 2, 3, 1, 2), (2, 3, 5, 6, 3, 3, 1, 1)],
                         ids=["stride2", "dilation2", "G_eq_C"])
def test_gradcheck_double(shape):
    K, s, d = shape[5:]
    x, w, _ = _inputs(shape)  # small: gradcheck perturbs every element
    x.requires_grad_(), w.requires_grad_()
    assert torch.autograd.gradcheck(lambda x, w: APPLY["cpu"](x, w, K, s, d), (x, w), fast_mode=True)


@pytest.mark.parametrize("layout", ["channels_last", "sliced"])
def test_non_contiguous_inputs(layout):
    shape = (2, 16, 11, 12, 4, 7, 1, 1)
    K, s, d = shape[5:]
    x64, w64, g64 = _inputs(shape)
    ref = _reference(shape, x64, w64, g64)
    x, w = x64.float(), w64.float()
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    else:
        wide = torch.zeros(*x.shape[:3], 2 * x.shape[3])
        wide[..., ::2] = x
        x = wide[..., ::2]  # the same values, every other column of a wider tensor
        w = w.transpose(3, 4).contiguous().transpose(3, 4)
        assert not x.is_contiguous() and not w.is_contiguous()
    got = _forward_backward(lambda x, w: APPLY["cpu"](x, w, K, s, d), x, w, g64)
    for name, a, r in zip(("out", "grad_x", "grad_kernel"), got, ref):
        assert_close(f"{name} {layout}", a, r)


def test_thread_count_does_not_change_bits():
    shape = (2, 32, 33, 31, 2, 7, 1, 1)  # 3.2M MACs, over 3 × 128K: the kernel does use 3 threads
    K, s, d = shape[5:]
    x, w, g = (t.float() for t in _inputs(shape))
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            results.append((cpu.involution_cpu(x, w, K, s, d), *cpu.involution_cpu_backward(g, x, w, K, s, d)))
    finally:
        torch.set_num_threads(before)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.equal(a, b)


def test_registered_and_chosen_by_auto():
    spec = get("cpu", "involution")
    case = Case(B=1, C=16, H=8, W=8, K=7, G=1)
    assert spec.why_not(case) == []
    assert "C=16 is not divisible by G=3" in " ".join(spec.why_not(case.replace(G=3)))
    assert "device 'cuda' not supported" in " ".join(spec.why_not(case.replace(device="cuda")))
    assert variant_for(torch.zeros(1), "auto") == "cpu"
    info = spec.info(case)
    assert info["threads"] == torch.get_num_threads() and info["build"].startswith("isa=")


def test_flops_counted():
    from torch.utils.flop_counter import FlopCounterMode

    x, w, _ = (t.float() for t in _inputs((2, 8, 9, 11, 2, 3, 1, 1)))
    with FlopCounterMode(display=False) as counter:
        APPLY["cpu"](x, w, 3, 1, 1)
    assert counter.get_total_flops() == 2 * 2 * 8 * 9 * 11 * 9


def test_bad_input_names_the_problem():
    x = torch.randn(1, 8, 6, 6)
    w = torch.randn(1, 2, 9, 6, 6)
    with pytest.raises(ValueError, match="kernel_size=4 is even"):
        involution(x, torch.randn(1, 2, 16, 5, 5), kernel_size=4, variant="cpu")
    with pytest.raises(ValueError, match="not divisible by groups G=3"):
        involution(x, torch.randn(1, 3, 9, 6, 6), kernel_size=3, variant="cpu")
    with pytest.raises(ValueError, match=r"expected \(B, G, K\*K, Ho, Wo\) = \(1, 2, 9, 3, 3\)"):
        involution(x, w, kernel_size=3, stride=2, variant="cpu")
    with pytest.raises(TypeError, match="dtype mismatch"):
        cpu.involution_cpu(x, w.double(), 3, 1, 1)
    with pytest.raises(TypeError, match="not a floating-point dtype"):
        cpu.involution_cpu(x.int(), w.int(), 3, 1, 1)
    with pytest.raises(ValueError, match="grad_out has shape"):
        cpu.involution_cpu_backward(torch.randn(1, 8, 5, 5), x, w, 3, 1, 1)


def test_requirements_name_a_missing_compiler(monkeypatch):
    monkeypatch.setitem(cpu._BUILD, "library", None)  # as before the first build
    monkeypatch.setenv("CXX", "no-such-compiler-invobench")
    assert any("no C++ compiler found" in r for r in cpu.requirements())


def test_a_loaded_library_has_no_requirements(monkeypatch):
    # involution() checks requirements on every call: once the library is loaded the answer is
    # known, and the compiler and ninja no longer matter
    monkeypatch.setenv("CXX", "no-such-compiler-invobench")
    assert cpu._BUILD["library"] is not None and cpu.requirements() == []


def test_cache_key_covers_source_flags_and_cpu(monkeypatch):
    name = cpu.extension_name()
    monkeypatch.setattr(cpu, "_cpu_features", lambda: "fpu sse sse2")  # another CPU
    assert cpu.extension_name() != name
    monkeypatch.undo()
    monkeypatch.setattr(cpu, "CFLAGS", cpu.CFLAGS + ["-DEXTRA"])
    assert cpu.extension_name() != name


def _kernel_harness() -> tuple[str, list[str]]:
    """g++ and what it compiles for tests/harness/cpu_asan.cpp (the three kernels on edge shapes against
    a naive double loop, in exact-sized buffers): the csrc include path, the harness, and the translation
    unit that defines the kernels' C ABI. Skips the test where there is no g++."""
    import shutil
    from pathlib import Path

    cxx = shutil.which("g++")
    if cxx is None:
        pytest.skip("g++ not found")
    harness = Path(__file__).resolve().parents[1] / "harness" / "cpu_asan.cpp"
    return cxx, [f"-I{cpu.SOURCE.parent}", str(harness), str(cpu.SOURCE)]


def _run_kernel_harness(tmp_path, name: str, flags: list[str]) -> None:
    """Build the harness with `flags`, run it, and require every shape to print "ok"."""
    import subprocess

    cxx, sources = _kernel_harness()
    exe = tmp_path / name
    subprocess.run([cxx, *flags, "-fopenmp", "-std=c++17", "-o", str(exe), *sources], check=True, capture_output=True,
                   text=True)
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr[-4000:]
    lines = run.stdout.splitlines()
    assert len(lines) > 10 and all(line.startswith("ok ") for line in lines), run.stdout


@pytest.mark.slow
def test_sanitizers_find_no_out_of_bounds_access(tmp_path):
    """tests/harness/cpu_asan.cpp and the kernels under AddressSanitizer and UBSan: exact-sized buffers, so
    a vector read one element past w (the forward's in-place partial vectors) is reported. ~50 s to
    compile, hence slow."""
    _run_kernel_harness(tmp_path, "cpu_asan", ["-O1", "-g", "-fsanitize=address,undefined",
                                               "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer",
                                               "-march=native"])


@pytest.mark.parametrize("march", ["x86-64-v3", "x86-64"])
def test_kernels_built_for_older_isas_agree_with_a_naive_loop(tmp_path, march):
    """The extension is built with -march=native, so on an AVX-512 machine the AVX2 and SSE code paths
    (AVX2's masked loads and stores; SSE's staged w ring in grad_input and its generic vector width)
    would go untested: the harness, without sanitizers (~4 s to build), compiled for those ISAs."""
    import platform

    if platform.machine() != "x86_64":
        pytest.skip("x86-64 ISA levels")
    _run_kernel_harness(tmp_path, f"cpu_check_{march}", ["-O1", f"-march={march}", "-ffp-contract=fast"])


@pytest.mark.parametrize("march", ["knl", "sandybridge"])
def test_kernels_compile_for_the_isa_corners(march):
    """The kernels pick code paths by ISA macros; two corners this machine cannot run still have to
    compile: AVX-512F without VL (Xeon Phi: 64-byte vectors, no masked loads) and AVX without AVX2."""
    import platform
    import subprocess

    if platform.machine() != "x86_64":
        pytest.skip("x86-64 ISA levels")
    cxx, sources = _kernel_harness()
    run = subprocess.run([cxx, f"-march={march}", "-fopenmp", "-std=c++17", "-fsyntax-only", *sources],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-4000:]


# ---- the ops in C++ (csrc/involution_cpu_ops.cpp) ----------------------------------------------

def test_ops_called_directly_check_their_arguments():
    """torch.ops.invobench.involution_cpu* skip the Python checks; the C++ ones keep the kernels in bounds."""
    ops = torch.ops.invobench
    x, w = torch.randn(1, 8, 6, 6), torch.randn(1, 2, 9, 6, 6)
    assert torch.equal(ops.involution_cpu(x, w, 3, 1, 1), cpu.involution_cpu(x, w, 3))
    with pytest.raises(ValueError, match=r"expected \(B, G, K\*K, Ho, Wo\) = \[1, 2, 9, 3, 3\]"):
        ops.involution_cpu(x, w, 3, 2, 1)
    with pytest.raises(ValueError, match="kernel_size=4 must be a positive odd integer"):
        ops.involution_cpu(x, torch.randn(1, 2, 16, 6, 6), 4, 1, 1)
    with pytest.raises(ValueError, match="C=8 is not divisible by groups G=3"):
        ops.involution_cpu(x, torch.randn(1, 3, 9, 6, 6), 3, 1, 1)
    with pytest.raises(ValueError, match="expected 4-D"):
        ops.involution_cpu(x[0], w, 3, 1, 1)
    with pytest.raises(TypeError, match="dtype mismatch"):
        ops.involution_cpu(x, w.double(), 3, 1, 1)
    with pytest.raises(TypeError, match="not supported by involution.cpu"):
        ops.involution_cpu(x.int(), w.int(), 3, 1, 1)
    with pytest.raises(ValueError, match="grad_out has shape"):
        ops.involution_cpu_backward(torch.randn(1, 8, 5, 5), x, w, 3, 1, 1)


def test_autograd_calls_the_backward_op_which_counters_see():
    from torch.utils.flop_counter import FlopCounterMode

    shape = (2, 8, 9, 11, 2, 3, 1, 1)
    x, w, g = (t.float().requires_grad_() for t in _inputs(shape))
    macs = 2 * 8 * 9 * 11 * 9
    with FlopCounterMode(display=False) as counter:
        APPLY["cpu"](x, w, 3, 1, 1).backward(g.detach())
    per_op = {str(op): n for op, n in counter.get_flop_counts()["Global"].items()}
    assert per_op == {"invobench.involution_cpu": 2 * macs, "invobench.involution_cpu_backward": 4 * macs}
    assert x.grad is not None and w.grad is not None


def test_saves_x_and_kernel_for_backward():
    from invobench.bench.memory import saved_for_backward_bytes

    x, w, _ = (t.float().requires_grad_() for t in _inputs((2, 8, 9, 11, 2, 3, 1, 1)))
    saved, out = saved_for_backward_bytes(lambda: APPLY["cpu"](x, w, 3, 1, 1))
    assert saved == x.nbytes + w.nbytes and out.grad_fn is not None


def test_traced_whole_by_torch_compile():
    shape = (2, 8, 9, 11, 2, 3, 1, 1)
    x64, w64, g64 = _inputs(shape)
    ref = _reference(shape, x64, w64, g64)
    torch._dynamo.reset()
    compiled = torch.compile(lambda a, b: APPLY["cpu"](a, b, 3, 1, 1), backend="aot_eager", fullgraph=True)
    got = _forward_backward(compiled, x64.float(), w64.float(), g64)
    for name, a, r in zip(("out", "grad_x", "grad_kernel"), got, ref):
        assert_close(f"{name} compiled", a, r)


def test_a_first_build_says_so(monkeypatch, tmp_path, caplog):
    """Building takes 20-30 s: the user is told, instead of a sweep that seems to hang."""
    from torch.utils import cpp_extension

    def no_build(**kwargs):
        raise RuntimeError("stub: not building in this test")

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))  # an empty cache
    monkeypatch.setattr(cpp_extension, "load", no_build)
    monkeypatch.setitem(cpu._BUILD, "library", None)
    monkeypatch.setitem(cpu._BUILD, "error", None)
    with caplog.at_level("WARNING", logger=cpu.__name__), pytest.raises(RuntimeError, match="stub"):
        cpu.library()
    assert any("compiling the C++ extension" in r.getMessage() and str(tmp_path) in r.getMessage()
               for r in caplog.records)
    assert cpu._BUILD["error"] == "stub: not building in this test"
