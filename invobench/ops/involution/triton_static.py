"""Ahead-of-time compilation of the Triton involution kernels, with ptxas's resource figures, on any machine.

`static_profiles(archs, dtypes)` compiles every kernel of `triton.py` (the tiled `triton` kernels
and the naive `triton-simple` ones) in every autotune configuration for each requested
architecture and dtype with `triton.compile(ASTSource(...), target=GPUTarget("cuda", cc, 32))`,
which needs triton's bundled ptxas but no GPU, and reads ptxas's register, shared-memory, spill
and stack figures.

The kernels are specialised exactly as the JIT would specialise them for one representative
case, the first stage of RedNet at the paper's batch size (`REPRESENTATIVE`: B=32, C=256,
56×56, G=16 so Cg=16, K=7, stride 1): integer arguments equal to 1 become constants and
arguments divisible by 16 carry the divisibility hint, as in `JITFunction.run`.

shared_bytes is ptxas's static shared memory plus the dynamic shared memory Triton reserves for
the kernel (`metadata.shared`, e.g. for the cross-warp channel reduction); Triton kernels declare
all of theirs dynamically, so ptxas alone would report 0.

Figures are cached on disk (`cache_dir()`), keyed on the kernel source hash, specialisation,
options, target and the triton/ptxas versions, so a second call takes well under a second; the
first compiles each kernel once (≈1 s each).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from invobench.ops.involution.ptxas import StaticKernelProfile, parse_ptxas_verbose

log = logging.getLogger(__name__)

#: the case every kernel is specialised for (RedNet stage 1 at batch 32, spec §5)
REPRESENTATIVE = dict(B=32, C=256, H=56, W=56, G=16, K=7, stride=1, dilation=1)
TRITON_DTYPE = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}
#: bumped when what is stored per entry changes
CACHE_VERSION = 1


def cache_dir() -> Path:
    """Where compiled figures are cached: $INVOBENCH_CACHE_DIR, else $XDG_CACHE_HOME/invobench, else ~/.cache/invobench."""
    root = os.environ.get("INVOBENCH_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "invobench"
    )
    return Path(root) / "triton_static"


@dataclass(frozen=True)
class KernelBuild:
    """One kernel in one configuration, with the arguments it is specialised for."""

    name: str                      # e.g. "involution_fwd"
    kernel: object                 # the @triton.jit function
    config_label: str
    num_warps: int
    args: dict                     # runtime arguments by name (tensors as dtypes)
    constexprs: dict               # tl.constexpr arguments by name


def kernel_builds(dtype: str) -> list[KernelBuild]:
    """Every kernel × autotune configuration of `triton.py`, specialised for REPRESENTATIVE in `dtype`."""
    from triton.runtime.jit import MockTensor

    from invobench.core import DTYPES, out_size, padding_for
    from invobench.ops.involution import triton as tk

    r = REPRESENTATIVE
    B, C, H, W, G, K, s, d = r["B"], r["C"], r["H"], r["W"], r["G"], r["K"], r["stride"], r["dilation"]
    Ho, Wo, Cg, p = out_size(H, K, s, d), out_size(W, K, s, d), C // G, padding_for(K, d)
    t = MockTensor(DTYPES[dtype])
    geometry = dict(C=C, H=H, W=W, Ho=Ho, Wo=Wo, G=G, Cg=Cg, dilation=d, padding=p)
    shape = f"K={K} s={s} Cg={Cg}"
    cdiv = lambda a, b: -(-a // b)  # noqa: E731
    builds = []
    for cfg in tk.TILED_CONFIGS:
        bc = cfg.block_c(Cg)
        label = f"{cfg.label(Cg)} ({shape})"
        common = dict(K=K, STRIDE=s, BLOCK_C=bc, BLOCK_P=cfg.block_p, USE_INT64=False)
        builds += [
            KernelBuild("involution_fwd", tk.involution_fwd_kernel, label, cfg.num_warps,
                        dict(x_ptr=t, w_ptr=t, out_ptr=t, **geometry,
                             n_tiles=cdiv(Ho * Wo, cfg.block_p), n_cblocks=cdiv(Cg, bc)), common),
            KernelBuild("involution_bwd_input", tk.involution_bwd_input_kernel, label, cfg.num_warps,
                        dict(gout_ptr=t, w_ptr=t, gx_ptr=t, **geometry,
                             n_tiles=cdiv(H * W, cfg.block_p), n_cblocks=cdiv(Cg, bc)), common),
            KernelBuild("involution_bwd_kernel", tk.involution_bwd_kernel_kernel, label, cfg.num_warps,
                        dict(gout_ptr=t, x_ptr=t, gw_ptr=t, **geometry, n_tiles=cdiv(Ho * Wo, cfg.block_p)),
                        dict(common, SINGLE_CHUNK=bc >= Cg)),
        ]
    for cfg in tk.SIMPLE_CONFIGS:
        label = f"{cfg.label()} ({shape})"
        common = dict(K=K, STRIDE=s, BLOCK=cfg.block_p, USE_INT64=False)
        builds += [
            KernelBuild("involution_fwd_simple", tk.involution_fwd_simple_kernel, label, cfg.num_warps,
                        dict(x_ptr=t, w_ptr=t, out_ptr=t, **geometry, n_total=B * C * Ho * Wo), common),
            KernelBuild("involution_bwd_input_simple", tk.involution_bwd_input_simple_kernel, label, cfg.num_warps,
                        dict(gout_ptr=t, w_ptr=t, gx_ptr=t, **geometry, n_total=B * C * H * W), common),
            KernelBuild("involution_bwd_kernel_simple", tk.involution_bwd_kernel_simple_kernel, label, cfg.num_warps,
                        dict(gout_ptr=t, x_ptr=t, gw_ptr=t, **geometry, n_total=B * G * K * K * Ho * Wo), common),
        ]
    return builds


def _jit_function(kernel):
    """The JITFunction for a kernel even if the module was imported under TRITON_INTERPRET=1."""
    from triton.runtime.jit import JITFunction

    return kernel if isinstance(kernel, JITFunction) else JITFunction(kernel.fn)


def ast_source(build: KernelBuild, cc: int):
    """ASTSource of a build for compute capability `cc`, specialised as `JITFunction.run` would."""
    from triton._C.libtriton import native_specialize_impl
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from triton.compiler.compiler import make_backend

    fn = _jit_function(build.kernel)
    backend = make_backend(GPUTarget("cuda", cc, 32))
    signature, constexprs, attrs = {}, {}, {}
    for index, name in enumerate(fn.arg_names):
        if name in build.constexprs:
            signature[name], constexprs[name] = "constexpr", build.constexprs[name]
            continue
        if name not in build.args:
            raise KeyError(f"{build.name}: no representative value for argument {name!r}")
        ty, spec = native_specialize_impl(type(backend), build.args[name], False, True, True)
        signature[name] = ty
        if ty == "constexpr":
            constexprs[name] = build.args[name]
        elif spec:
            attrs[(index,)] = backend.parse_attr(spec)
    return ASTSource(fn, signature, constexprs, attrs)


def _ptxas_flags(cc: int) -> tuple[str, list[str]]:
    """Triton's ptxas and the flags its NVIDIA backend passes (so figures match what the JIT builds)."""
    from triton.backends.nvidia.compiler import get_ptxas, sm_arch_from_capability

    return get_ptxas(cc).path, ["-lineinfo", "-v", "--regAllocOptLevel=2", f"--gpu-name={sm_arch_from_capability(cc)}"]


def run_ptxas(ptx: str, cc: int) -> str:
    """`ptxas -v` on PTX text; returns its report (stderr)."""
    ptxas, flags = _ptxas_flags(cc)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "kernel.ptx"
        src.write_text(ptx)
        done = subprocess.run([ptxas, *flags, str(src), "-o", str(Path(tmp) / "kernel.cubin")],
                              capture_output=True, text=True, check=True)
    return done.stderr + done.stdout


def _cache_key(source, cc: int, num_warps: int) -> str:
    import triton
    from triton.backends.nvidia.compiler import get_ptxas_version

    text = json.dumps([CACHE_VERSION, triton.__version__, get_ptxas_version(cc), source.hash(), cc, num_warps])
    return hashlib.sha256(text.encode()).hexdigest()


def compile_figures(build: KernelBuild, cc: int) -> dict:
    """Compile one build for `cc` (or read the cache) and return its ptxas figures."""
    import triton
    from triton import knobs
    from triton.backends.compiler import GPUTarget

    source = ast_source(build, cc)
    path = cache_dir() / f"{_cache_key(source, cc, build.num_warps)}.json"
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            log.warning("ignoring unreadable cache entry %s", path)
    captured = io.StringIO()
    with knobs.nvidia.scope(), warnings.catch_warnings(), contextlib.redirect_stdout(captured):
        warnings.filterwarnings("ignore", message="TRITON_DEFAULT_FP_FUSION")
        knobs.nvidia.dump_ptxas_log = True  # Triton prints its own ptxas -v report: no second ptxas run
        compiled = triton.compile(source, target=GPUTarget("cuda", cc, 32), options={"num_warps": build.num_warps})
    report = captured.getvalue()
    if "registers" not in report:  # a hit in Triton's own cache: ptxas did not run this time
        report = run_ptxas(compiled.asm["ptx"], cc)
    figures = parse_ptxas_verbose(report)
    figures["shared_bytes"] = (figures["shared_bytes"] or 0) + int(compiled.metadata.shared)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(figures))
    tmp.replace(path)
    return figures


def static_profiles(archs: list[int], dtypes: list[str]) -> list[StaticKernelProfile]:
    """ptxas figures of every Triton involution kernel and configuration, per arch (e.g. 80, 90) and dtype."""
    try:
        import triton  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(f"triton is not installed ({exc}); pip install 'invobench[triton]'") from exc
    profiles = []
    for dtype in dtypes:
        if dtype not in TRITON_DTYPE:
            profiles.extend(StaticKernelProfile("triton", "*", "*", f"sm_{cc}", dtype, None, None, None, None,
                                                error=f"dtype {dtype} not supported (supports: {', '.join(TRITON_DTYPE)})")
                            for cc in archs)
            continue
        builds = kernel_builds(dtype)
        for cc in archs:
            for build in builds:
                try:
                    figures = compile_figures(build, cc)
                    error = None
                except Exception as exc:  # one failing build must not hide the others' figures
                    figures, error = {}, f"{type(exc).__name__}: {exc}"
                    log.warning("AOT compile of %s [%s] for sm_%d %s failed: %s", build.name, build.config_label, cc, dtype, error)
                profiles.append(StaticKernelProfile(
                    backend="triton", kernel=build.name, config=build.config_label, arch=f"sm_{cc}", dtype=dtype,
                    registers=figures.get("registers"), shared_bytes=figures.get("shared_bytes"),
                    spill_store_bytes=figures.get("spill_store_bytes"), spill_load_bytes=figures.get("spill_load_bytes"),
                    stack_bytes=figures.get("stack_bytes"), error=error,
                ))
    return profiles


def format_table(profiles: list[StaticKernelProfile]) -> str:
    """A Markdown table of profiles (what docs/triton.md shows)."""
    lines = ["| kernel | config | arch | dtype | registers | smem B | spill st/ld B | stack B |",
             "|---|---|---|---|---:|---:|---:|---:|"]
    for p in profiles:
        if p.error:
            lines.append(f"| {p.kernel} | {p.config} | {p.arch} | {p.dtype} | error: {p.error} | | | |")
            continue
        lines.append(f"| {p.kernel} | {p.config} | {p.arch} | {p.dtype} | {p.registers} | {p.shared_bytes} | "
                     f"{p.spill_store_bytes}/{p.spill_load_bytes} | {p.stack_bytes} |")
    return "\n".join(lines)

