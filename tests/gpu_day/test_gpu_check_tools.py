"""The Python half of the GPU check (tools/gpu_check.py): summary.md's figures from a results file, ncu's CSV
as one line per kernel, invobench check's verdict, the check's split into processes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import synthetic_results as synthetic
from invobench.registry import Case
from invobench.results import Roofline, read_results

from tools_loader import load_tool

ROOT = Path(__file__).resolve().parents[2]


gpu_check = load_tool("gpu_check")

#: fwd medians (ms) at C = 64; other stages scale with C, passes with PASS_FACTOR
MS = {"involution.triton": 0.05, "involution.cuda": 0.04, "involution.cuda-simple": 0.2, "involution.unfold": 1.0,
      "involution.eager": 2.0, "involution.triton-simple": 0.15, "conv.depthwise": 0.03,
      "model.resnet50": 10.0, "model.rednet50-triton": 14.0, "model.rednet50-cuda": 18.0}
PASS_FACTOR = {"fwd": 1.0, "bwd": 2.0, "fwd+bwd": 2.5, "train": 3.0}
COPY_GBPS = 3000.0


def _latency(variant: str, case: Case, pass_: str) -> float:
    scale = case.C / 64 if case.level == "op" else 1.0
    return MS[variant] * PASS_FACTOR[pass_] * scale


@pytest.fixture(scope="module")
def gpu_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("gpu") / "gpu-quick.jsonl"
    cases = [Case(B=32, C=C, H=H, W=H, K=7, G=C // 16, dtype=dtype, device="cuda")
             for dtype in ("float32", "bfloat16") for C, H in gpu_check.STAGES]
    synthetic.write_run(path, variants=[k for k in MS if not k.startswith("model.")], cases=cases,
                        passes=("fwd", "bwd", "fwd+bwd"), failures=False, sigma=0, latency=_latency, suite="gpu-quick")
    image = Case(B=32, C=3, H=224, W=224, K=7, G=1, dtype="bfloat16", device="cuda", level="model", channels_last=True)
    rng = np.random.default_rng(0)
    with path.open("a") as fh:
        for variant in ("model.resnet50", "model.rednet50-triton", "model.rednet50-cuda"):
            for pass_ in ("fwd", "train"):
                rec = synthetic.make_record(variant, image, pass_, rng=rng, sigma=0,
                                            median_ms=_latency(variant, image, pass_))
                fh.write(rec.model_dump_json(by_alias=True) + "\n")
        fh.write(synthetic.make_record("involution.cuda", cases[0].replace(B=64), "fwd", rng=rng, status="error",
                                       error="RuntimeError: CUDA error: an illegal memory access").model_dump_json(
                                           by_alias=True) + "\n")
        fh.write(Roofline(device="cuda", dtype="float32", copy_bandwidth_gbps=COPY_GBPS,
                          matmul_peak_flops=5e13).model_dump_json() + "\n")
    return read_results(path)


STEPS = [{"name": "install", "status": "ok", "seconds": 6.0, "note": "14 checked"},
         {"name": "gpu-quick", "status": "ok", "seconds": 190.0, "note": "294 records"},
         {"name": "ncu", "status": "warning: FAILED (exit 1)", "seconds": 3.0, "note": "ERR_NVGPUCTRPERM"}]


def _section(text: str, title: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("## " + title))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return [line for line in lines[start:end] if line.startswith("| ") and not line.startswith("| stage |")
            and not line.startswith("| pass |")]


def test_summary_reads_bandwidth_and_speed_ups_off_the_run(gpu_run):
    text = "\n".join(gpu_check.summary_lines(gpu_run, STEPS, [], [], 197.0))
    rows = _section(text, "Triton and CUDA forward")
    assert len(rows) == 8
    cuda_c64 = next(r for r in rows if r.startswith("| C64 56×56 | cuda |"))
    cells = [c.strip() for c in cuda_c64.strip("|").split("|")]
    min_bytes = 4 * (2 * 32 * 64 * 56 * 56 + 32 * 4 * 49 * 56 * 56)
    gbps = min_bytes / 0.04e-3 / 1e9
    assert cells[3] == f"{gbps:,.0f}"
    assert cells[4] == f"{100 * gbps / COPY_GBPS:.3g} ✓"     # over 70 % of the copy bandwidth
    assert cells[5] == "25 ✓" and cells[6] == "5"             # 1.0 / 0.04 unfold, 0.2 / 0.04 cuda-simple
    triton_c512 = next(r for r in rows if r.startswith("| C512 7×7 | triton |"))
    assert "✗" in triton_c512.split("|")[5]                   # far below the bandwidth target
    assert "gpu-quick took 190 s; estimated 197 s" in text


def test_summary_ratios_best_involution_and_rednet(gpu_run):
    text = "\n".join(gpu_check.summary_lines(gpu_run, STEPS, [], [], None))
    ratio_rows = _section(text, "fwd+bwd ÷ fwd")
    assert len(ratio_rows) == 8 and all(r.count("2.5 ✓") == 2 for r in ratio_rows)
    best = _section(text, "Best involution")
    assert len(best) == 16
    assert all("| cuda |" in r for r in best)
    first = [c.strip() for c in best[0].strip("|").split("|")]
    assert first[:4] == ["C64 56×56", "float32", "fwd", "cuda"] and first[6] == f"{0.04 / 0.03:.3g}"
    rednet = _section(text, "RedNet-50 ÷ ResNet-50")
    assert [r.split("|")[6].strip() for r in rednet] == ["1.4 ✓", "1.8 ✗", "1.4 ✓", "1.8 ✗"]
    assert "3.2× ResNet-50's latency at batch 1" in text


def test_summary_lists_steps_failures_and_warnings(gpu_run):
    text = "\n".join(gpu_check.summary_lines(gpu_run, STEPS, [], ["problem: involution.cuda float16: mismatch"], None))
    assert "| ncu | warning: FAILED (exit 1) | 3 | ERR_NVGPUCTRPERM |" in text
    assert "failed: ncu" in text
    assert "involution.cuda fwd B64" in text and "illegal memory access" in text
    assert "problem: involution.cuda float16: mismatch" in text


def test_summary_of_a_run_without_cuda_says_why_nothing_was_measured(tmp_path):
    path = synthetic.write_run(tmp_path / "skipped.jsonl", variants=["involution.cuda"], cases=[Case(B=32, C=64, H=56, W=56,
                               K=7, G=4, device="cuda")], passes=("fwd",), failures=False)
    run = read_results(path)
    for record in run.records:
        record.status, record.stats, record.reasons = "skipped", None, ["no CUDA device on this machine"]
    text = "\n".join(gpu_check.summary_lines(run, STEPS[:1], [], [], None))
    assert "No measured records (1 records, none ok): no CUDA device on this machine" in text
    assert "## Triton" not in text


def test_write_summary_reports_a_missing_results_file(tmp_path):
    steps = tmp_path / "steps.tsv"
    steps.write_text("install\tok\t6\tfine\ngpu-quick\ttimed out\t330\tafter 330 s; last line: ab\xe2\n")
    out = tmp_path / "summary.md"
    gpu_check.write_summary(tmp_path / "missing.jsonl", steps, out)
    text = out.read_text()
    assert "| gpu-quick | timed out | 330 |" in text and "No results file" in text


NCU_CSV = '''==PROF== Connected to process 4242 (/usr/bin/python3.12)
==PROF== Profiling "involution_fwd_tiled_unit": 0%....50%....100% - 4 passes
cuda forward and backward ran
"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream","Block Size","Grid Size","Device","CC","dram__bytes_read.sum","dram__bytes_write.sum","dram__throughput.avg.pct_of_peak_sustained_elapsed","gpu__time_duration.sum","launch__registers_per_thread","sm__throughput.avg.pct_of_peak_sustained_elapsed","sm__warps_active.avg.pct_of_peak_sustained_active"
"","","","","","","","","","","","Mbyte","Mbyte","%","usecond","register/thread","%","%"
"0","4242","python3.12","127.0.0.1","involution_fwd_tiled_unit","1","7","(8, 16, 1)","(98, 16, 32)","0","9.0","419.43","104.86","88.10","180.40","121","40.2","61.5"
"1","4242","python3.12","127.0.0.1","involution_fwd_simple(float const*, float const*, float*)","1","7","(256, 1, 1)","(100352, 1, 1)","0","9.0","1,024.00","104.86","45.00","1.2","40","70.1","90.0"
==PROF== Disconnected from process 4242
'''


def test_ncu_csv_becomes_one_line_per_kernel():
    rows = gpu_check.parse_ncu_csv(NCU_CSV)
    assert [r["kernel"] for r in rows] == ["involution_fwd_tiled_unit", "involution_fwd_simple(float const*, float const*, float*)"]
    table = gpu_check.ncu_table(rows)
    assert len(table) == 4
    tiled = [c.strip() for c in table[2].strip("|").split("|")]
    assert tiled[:2] == ["involution_fwd_tiled_unit", "180.4"]
    assert tiled[2:5] == ["419.4", "104.9", f"{(419.43 + 104.86) * 1e6 / 180.40e-6 / 1e9:,.0f}"]
    assert tiled[5:] == ["88.1", "40.2", "61.5", "121"]
    simple = [c.strip() for c in table[3].strip("|").split("|")]
    assert simple[0] == "involution_fwd_simple" and simple[1] == "1.2" and simple[2] == "1,024.0"  # ms → µs, thousands


def test_ncu_output_without_a_table_gives_no_rows():
    assert gpu_check.parse_ncu_csv("==ERROR== ERR_NVGPUCTRPERM - The user does not have permission\n") == []


def _result(variant, dtype, ok=True, max_abs=1e-6, detail="", shape="B2 C8 9x7 K3 G2"):
    return {"variant": variant, "dtype": dtype, "shape": shape, "layout": "contiguous", "tensor": "out",
            "max_abs": max_abs, "max_rel": max_abs, "allowed": 1e-4, "ok": ok, "detail": detail}


def test_check_verdict_wants_every_gpu_variant_compared_in_every_dtype():
    everything = [_result(v, d) for v in gpu_check.KERNEL_VARIANTS + gpu_check.TORCH_VARIANTS
                  for d in gpu_check.CHECK_DTYPES]
    from invobench.registry import get

    supported = [r for r in everything if r["dtype"] in get(r["variant"]).dtypes]
    lines, problems = gpu_check.check_verdict(supported)
    assert problems == [] and any(line.startswith("involution.cuda ") and line.endswith("ok") for line in lines)
    unavailable = [r for r in supported if r["variant"] != "involution.cuda"] + [
        {"variant": "involution.cuda", "dtype": "-", "shape": "-", "layout": "-", "tensor": "-", "max_abs": None,
         "max_rel": None, "allowed": None, "ok": True, "detail": "unavailable: CuPy is not installed"}]
    _, problems = gpu_check.check_verdict(unavailable)
    assert "involution.cuda: unavailable: CuPy is not installed" in problems
    assert "involution.cuda float32: not compared (no result)" in problems
    wrong = supported + [_result("involution.triton", "bfloat16", ok=False, max_abs=0.5, detail="0.5 > 0.01")]
    _, problems = gpu_check.check_verdict(wrong)
    assert problems == ["involution.triton bfloat16: 1 mismatches, first MISMATCH: B2 C8 9x7 K3 G2 contiguous out: 0.5 > 0.01"]


def test_check_runs_each_kernel_variant_and_dtype_apart():
    jobs = gpu_check.check_jobs()
    assert ("involution.cuda", "float64") in jobs and ("involution.triton", "float64") not in jobs
    assert len([j for j in jobs if j[0] == "involution.triton"]) == 3
    torch_job = jobs[-1]
    assert set(torch_job[0].split(",")) == set(gpu_check.TORCH_VARIANTS) and torch_job[1].count(",") == 3
    covered = {key for job in jobs for key in job[0].split(",")} | set(gpu_check.NOT_CHECKED)
    from invobench.registry import all_variants

    on_cuda = {v.key for v in all_variants() if "cuda" in v.devices and v.family != "model"}
    assert on_cuda == covered, "every variant that runs on CUDA is checked or says why not"


def test_check_json_is_found_behind_other_output():
    assert gpu_check.check_json('compiling involution_cuda.cu [float32]\n[{"variant": "involution.cuda"}]\n') == \
        [{"variant": "involution.cuda"}]
    assert gpu_check.check_json("Traceback (most recent call last): [boom\n") == []


def test_the_sanitizer_cases_launch_all_nine_cuda_entry_points():
    from invobench.ops.involution.cuda_nvrtc import _ENTRY_POINTS

    assert gpu_check.planned_kernels(gpu_check.SMALL_CASES) == set(_ENTRY_POINTS)
    assert gpu_check.planned_kernels(gpu_check.SMALL_CASES[:1]) != set(_ENTRY_POINTS)
