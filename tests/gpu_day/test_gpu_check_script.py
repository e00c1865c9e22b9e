"""tools/gpu_check.sh, the one command of the GPU day: its guards, its deadline, and (slow tier) the whole
rehearsal on this CPU machine, where every step that needs CUDA says so and is skipped."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "gpu_check.sh"
#: what may come back from the GPU machine's output folder
MAX_FILES = 8


def _run(out: Path, timeout: int, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), str(out)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHON": sys.executable, **env})


@pytest.mark.parametrize("script", ["gpu_check.sh", "compat_check.sh"])
def test_the_shell_scripts_parse(script):
    proc = subprocess.run(["bash", "-n", str(ROOT / "tools" / script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_usage_without_an_out_dir():
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "OUT_DIR" in proc.stdout


def test_an_out_dir_holding_files_is_refused_untouched(tmp_path):
    (tmp_path / "old.jsonl").write_text("{}\n")
    proc = _run(tmp_path, 30)
    assert proc.returncode == 2
    assert f"OUT_DIR {tmp_path} is not empty (old.jsonl" in proc.stdout and "give an empty or new folder" in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.jsonl"]


def test_a_spent_deadline_runs_nothing_and_names_every_step_not_run(tmp_path):
    """The time box of the whole check: with no time left each step is recorded as not run, the summary and
    the log are still written, and the exit status names the steps."""
    out = tmp_path / "out"
    proc = _run(out, 120, GPU_CHECK_DEADLINE_S="40")
    assert proc.returncode == 1, proc.stdout[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("GPU check FAILED at: install;env and list;estimate;NVRTC precompile;pytest -m gpu")
    assert "gpu-quick" in last
    files = sorted(p.name for p in out.iterdir())
    assert files == ["gpu_check.log", "summary.md"]
    summary = (out / "summary.md").read_text()
    assert "| install | not run | 0 | deadline 40 s reached |" in summary
    assert "No results file" in summary
    assert "GPU check FAILED at" in (out / "gpu_check.log").read_text()


@pytest.mark.slow
def test_the_rehearsal_runs_every_step_on_this_cpu(tmp_path):
    """make gpu-rehearsal's run, in this environment with the carried wheels of its Python (about 3 minutes)."""
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    if not list((ROOT / ".gpu-wheels" / tag).glob("*.whl")):
        pytest.skip(f"no carried wheels for {tag}: make gpu-wheels GPU_PYTHON_VERSION={sys.version_info[0]}."
                    f"{sys.version_info[1]}")
    out = tmp_path / "rehearsal"
    proc = _run(out, 900)
    assert proc.returncode == 0, proc.stdout[-5000:]
    files = sorted(p.name for p in out.iterdir())
    assert files == ["gpu-quick.jsonl", "gpu_check.log", "report.html", "summary.md"] and len(files) <= MAX_FILES
    summary = (out / "summary.md").read_text()
    for step, status in [("install", "ok"), ("env and list", "ok"), ("NVRTC precompile", "ok"),
                         ("pytest -m gpu", "ok"), ("invobench check (CUDA)", "skipped"),
                         ("compute-sanitizer memcheck", "skipped"), ("gpu-quick", "ok"), ("ncu", "skipped"),
                         ("report", "ok")]:
        assert f"| {step} | {status} |" in summary, (step, summary)
    assert "No measured records" in summary and "no CUDA device" in summary
