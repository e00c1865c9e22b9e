"""The runner end to end (real worker subprocesses, tiny cases): records, faults, guard, resume, shards, CLI."""
from __future__ import annotations

import errno
import json
import os
import platform
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jsonschema
import pytest
import torch
from click.testing import CliRunner

from invobench import registry
from invobench.bench.merge import merge_shards
from invobench.bench.protocol import WorkerProcess
from invobench.bench.runner import RunConfig, RunnerError, run_suite
from invobench.cli import cli
from invobench.results import SCHEMA_FILE, ResultsFileError, read_results
from tiny_suite import TINY

PLUGIN = str(Path(__file__).resolve().parents[1] / "harness" / "fault_plugin.py")
REPO = Path(__file__).resolve().parents[2]



@pytest.fixture(autouse=True)
def _restore_registry():
    """Plugins register test variants in this process too; take them out again after each test."""
    before = {v.key for v in registry.all_variants()}
    yield
    for variant in registry.all_variants():
        if variant.key not in before:
            registry.unregister(variant.key)


def write_suite(tmp_path: Path, text: str = TINY, name: str = "tiny.yaml") -> str:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return str(p)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One run of TINY shared by the tests that only read or copy its file (a worker start costs seconds)."""
    tmp = tmp_path_factory.mktemp("tiny")
    out = tmp / "r.jsonl"
    summary = run_suite(RunConfig(suite=write_suite(tmp), out=out))
    return tmp, out, summary


def copy_run(tiny_run, tmp_path: Path) -> tuple[str, Path]:
    src_dir, src, _ = tiny_run
    suite = write_suite(tmp_path)
    out = tmp_path / "r.jsonl"
    out.write_bytes(src.read_bytes())
    return suite, out


def test_run_writes_a_schema_valid_file_with_samples_counts_memory_and_roofline(tiny_run):
    _, out, summary = tiny_run
    schema = json.loads(SCHEMA_FILE.read_text())
    objs = lines(out)
    for obj in objs:
        jsonschema.validate(obj, schema)
    assert [o["type"] for o in objs][:2] == ["header", "roofline"]
    data = read_results(out)
    assert data.header.suite.name == "tiny" and data.header.fingerprint.torch.version
    (roof,) = data.rooflines
    assert roof.device == "cpu" and roof.copy_bandwidth_gbps > 0 and roof.matmul_peak_flops > 0 and roof.error is None
    records = {(r.variant, r.pass_): r for r in data.records}
    assert set(records) == {(v, p) for v in ("eager", "depthwise") for p in ("fwd", "fwd+bwd")}
    for (variant, pass_), r in records.items():
        assert r.status == "ok", r.error
        assert 3 <= len(r.samples_ms) <= 5 and r.stats.n == len(r.samples_ms) and r.stats.median_ms > 0
        assert r.timer.method == "perf_counter" and r.timer.overhead_ms > 0 and r.timer.threads >= 1
        assert r.timer.stop_reason in ("converged", "budget", "max_samples")
        assert r.memory.peak_method == "profiler_allocator_events" and r.memory.peak_bytes > 0
        assert r.roofline.pct_of_roofline > 0 and r.roofline.achieved_gbps > 0
        assert r.info["first_call_ms"] > 0
        assert len(r.info["host_load"]) == 3
    # counts from the spec: involution apply MACs = B·C·Ho·Wo·K² = 8·36·9; fwd+bwd = 3× that
    assert records[("eager", "fwd")].macs == 8 * 36 * 9 and records[("eager", "fwd+bwd")].macs == 3 * 8 * 36 * 9
    assert records[("eager", "fwd")].flops == 2 * 8 * 36 * 9
    assert records[("eager", "fwd")].memory.min_bytes == 4 * (8 * 36 + 2 * 9 * 36 + 8 * 36)
    # saved for backward: the apply saves x (8·36 floats) and the kernel (2·9·36 floats), once each
    assert records[("eager", "fwd+bwd")].memory.saved_for_backward_bytes == 4 * (8 * 36 + 2 * 9 * 36)
    assert records[("eager", "fwd")].memory.saved_for_backward_bytes is None
    assert len(summary.records) == 4 and summary.out == out


@pytest.mark.parametrize("name, user_value", [
    ("THP_MEM_ALLOC_ENABLE", "0"),  # torch's huge pages for tensors >= 2 MiB
    ("GLIBC_TUNABLES", ""),  # large blocks kept on glibc's heap; empty: the system's behaviour
])
def test_workers_get_the_measurement_environment_unless_the_user_sets_it(tmp_path, monkeypatch, name, user_value):
    from invobench.env import WORKER_ENV_DEFAULTS, fingerprint

    def worker_env() -> dict:
        worker = WorkerProcess(tmp_path)
        worker.start()
        try:
            return worker.hello["env"]
        finally:
            worker.stop()

    monkeypatch.delenv(name, raising=False)
    assert worker_env()[name] == WORKER_ENV_DEFAULTS[name] == fingerprint()["env"][name]
    monkeypatch.setenv(name, user_value)  # a user's choice wins, and the record says so
    assert worker_env()[name] == user_value == fingerprint()["env"][name]


_RSS_SCRIPT = """
import torch
from invobench.bench.memory import release_cpu_heap
def rss_mib():
    return next(int(l.split()[1]) // 1024 for l in open("/proc/self/status") if l.startswith("VmRSS:"))
t = torch.empty(200 * 2**20 // 4)
t.fill_(1.0)
held = rss_mib()
del t
freed = rss_mib()
release_cpu_heap()
print(held, freed, rss_mib())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc" or not Path("/proc/self/status").exists(),
                    reason="glibc's tunables and malloc_trim, RSS from /proc")
@pytest.mark.parametrize("tunables", ["worker default", ""])
def test_cpu_heap_tunables_keep_a_freed_block_resident_until_the_case_ends(tunables):
    """With the workers' tunables a freed 200 MiB tensor stays mapped (the next call reuses its pages);
    release_cpu_heap, called after each case, returns it. With GLIBC_TUNABLES empty, free unmaps it."""
    from invobench.env import worker_environment

    env = worker_environment()
    if tunables != "worker default":
        env["GLIBC_TUNABLES"] = tunables
    out = subprocess.run([sys.executable, "-c", _RSS_SCRIPT], env=env, capture_output=True, text=True, check=True)
    held, freed, trimmed = map(int, out.stdout.split())
    if tunables == "worker default":
        assert freed > held - 20 and trimmed < held - 150, (held, freed, trimmed)
    else:
        assert freed < held - 150, (held, freed, trimmed)


def test_absent_device_gives_skipped_records_not_a_crash(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(WorkerProcess, "start", lambda self, *a, **k: pytest.fail("no worker needed when nothing can run"))
    out = tmp_path / "r.jsonl"
    run_suite(RunConfig(suite=write_suite(tmp_path, TINY.replace("device: cpu", "device: cuda")), out=out))
    data = read_results(out)
    assert len(data.records) == 4 and data.rooflines == []
    for r in data.records:
        assert r.status == "skipped" and any("no CUDA device" in reason for reason in r.reasons)
        assert r.macs is not None  # counts are attached to skipped records too


FAULTY = """
name: faulty
variants: [involution.test-raise, involution.test-segfault, involution.eager, involution.test-exit,
           involution.test-sigkill, involution.test-hang, involution.test-cuda-oom]
# timeout_s: the hang case waits this long; nothing else here takes seconds per step
budget: {warmup_s: 0.0, case_s: 0.02, min_samples: 3, max_samples: 5, timeout_s: 10}
roofline: {copy_mib: 2, matmul_max_n: 64, time_s: 0.01}
defaults: {B: 1, C: 8, size: 6, K: 3, G: 2, pass: fwd}
sweeps: [{}]
"""

MODELS = """
name: models
variants: [model.resnet26]
# a ResNet's first training step took over 10 s on a loaded 2-core box
budget: {warmup_s: 0.0, case_s: 0.02, min_samples: 3, max_samples: 5, timeout_s: 120}
roofline: {copy_mib: 2, matmul_max_n: 64, time_s: 0.01}
defaults: {B: 2, C: 3, size: 32, level: model}
sweeps: [{product: {pass: [fwd, train]}}]
"""


def test_crashes_kills_hangs_and_exceptions_become_records_and_the_sweep_goes_on(tmp_path, monkeypatch):
    monkeypatch.setenv("INVOBENCH_PLUGINS", PLUGIN)
    out = tmp_path / "r.jsonl"
    run_suite(RunConfig(suite=write_suite(tmp_path, FAULTY), out=out, mem_budget="90%"))
    by_variant = {r.variant: r for r in read_results(out).records}
    assert by_variant["eager"].status == "ok" and by_variant["eager"].stats.n >= 3
    raised = by_variant["test-raise"]
    assert raised.status == "error" and raised.error == "RuntimeError: test-raise failed on purpose"
    assert "Traceback" in raised.stderr_tail
    seg = by_variant["test-segfault"]
    assert seg.status == "crashed" and "SIGSEGV" in seg.error and "during warmup of involution.test-segfault" in seg.error
    assert "Fatal Python error" in seg.stderr_tail  # faulthandler's report from the worker
    ex = by_variant["test-exit"]
    assert ex.status == "crashed" and "exited with code 3" in ex.error
    killed = by_variant["test-sigkill"]
    assert killed.status == "crashed" and "SIGKILL" in killed.error
    hang = by_variant["test-hang"]
    assert hang.status == "timeout" and "no progress for 10 s" in hang.error
    assert by_variant["test-cuda-oom"].status == "oom"
    assert len(by_variant) == 7


def test_models_run_through_the_generic_path(tmp_path):
    """Whole networks: fwd is inference, train is Workload.train_step; counts and the guard's estimate from the models package."""
    out = tmp_path / "r.jsonl"
    run_suite(RunConfig(suite=write_suite(tmp_path, MODELS), out=out))
    fwd, train = read_results(out).records
    for r in (fwd, train):
        assert r.status == "ok" and r.stats.n >= 3, r.error
        assert r.macs > 0 and r.params > 1_000_000 and r.info["estimated_peak_bytes"] > 0
    assert (fwd.pass_, train.pass_) == ("fwd", "train") and train.macs == fwd.counts["macs_fwd"] + fwd.counts["macs_bwd"]
    assert fwd.memory.saved_for_backward_bytes is None and train.memory.saved_for_backward_bytes > 0


def test_memory_watchdog_kills_a_worker_over_budget(tmp_path, monkeypatch):
    monkeypatch.setenv("INVOBENCH_PLUGINS", PLUGIN)
    out = tmp_path / "r.jsonl"
    suite = FAULTY.replace("variants: [involution.test-raise", "variants: [involution.test-hog]\nx: [")
    suite = "\n".join(line for line in suite.splitlines() if not line.startswith("x:") and "test-sigkill" not in line)
    worker_rss = 700 * 2**20  # torch imported: the budget must leave room for the worker itself
    run_suite(RunConfig(suite=write_suite(tmp_path, suite), out=out, mem_budget=f"{worker_rss + 2**29}B"))
    (record,) = read_results(out).records
    assert record.status == "oom" and "exceeded the memory budget" in record.error
    assert "GLIBC_TUNABLES= returns them" in record.error  # the workers' heap setting, and what to do about it
    monkeypatch.setenv("GLIBC_TUNABLES", "")  # the system's allocator: nothing held back, no such hint
    out2 = tmp_path / "r2.jsonl"
    run_suite(RunConfig(suite=write_suite(tmp_path, suite), out=out2, mem_budget=f"{worker_rss + 2**29}B"))
    (record,) = read_results(out2).records
    assert record.status == "oom" and "GLIBC_TUNABLES" not in record.error


def test_memory_guard_skips_what_cannot_fit_before_running(tmp_path, monkeypatch):
    big = TINY.replace("C: 8, size: 6, K: 3", "C: 64, size: 160, K: 11").replace("involution.eager, conv.depthwise", "involution.unfold")
    big += "  - {variants: [conv.depthwise], product: {size: 6, K: 3, pass: fwd}}\n"  # a case that fits
    out = tmp_path / "r.jsonl"
    run_suite(RunConfig(suite=write_suite(tmp_path, big), out=out, mem_budget="1GiB"))
    records = [r for r in read_results(out).records if r.variant == "unfold"]
    assert len(records) == 2
    for r in records:
        assert r.status == "skipped" and r.reasons[0].startswith("memory guard: estimated peak")
        assert "exceeds the budget 1.0 GiB" in r.reasons[0] and r.info["estimated_peak_bytes"] > 2**30


def test_a_budget_below_every_case_is_refused_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(WorkerProcess, "start", lambda self, *a, **k: pytest.fail("nothing may start"))
    big = TINY.replace("C: 8, size: 6, K: 3", "C: 64, size: 160, K: 11").replace("involution.eager, conv.depthwise", "involution.unfold")
    out = tmp_path / "r.jsonl"
    with pytest.raises(RunnerError, match=r"below what the smallest case needs .* every case would be skipped; give at least --mem-budget"):
        run_suite(RunConfig(suite=write_suite(tmp_path, big), out=out, mem_budget="1GiB"))
    assert not out.exists()


def test_truncated_file_names_the_line_and_resume_repairs_it(tiny_run, tmp_path):
    suite, out = copy_run(tiny_run, tmp_path)
    full = out.read_text().splitlines(keepends=True)
    assert len(full) == 6  # header, roofline, 4 records
    out.write_text("".join(full[:4]) + full[4][: len(full[4]) // 2])  # killed while writing line 5
    with pytest.raises(ResultsFileError, match=r"r.jsonl:5: a partial last line \(no final newline\).*--resume"):
        read_results(out)
    result = CliRunner().invoke(cli, ["show", str(out)])
    assert result.exit_code != 0 and "r.jsonl:5: a partial last line" in result.output
    summary = run_suite(RunConfig(suite=suite, out=out, resume=True))
    assert summary.repaired and summary.already_done == 2 and len(summary.records) == 2
    data = read_results(out)
    assert len(data.records) == 4 and len({r.case_id for r in data.records}) == 4 and len(data.rooflines) == 1
    # a corrupt line in the middle is not repaired: it is named
    text = out.read_text().splitlines(keepends=True)
    out.write_text(text[0] + "{not json\n" + "".join(text[1:]))
    with pytest.raises(RunnerError, match=r"r.jsonl:2: not valid JSON"):
        run_suite(RunConfig(suite=suite, out=out, resume=True))


def test_a_full_disk_stops_the_run_and_resume_completes_it_with_nothing_lost(tiny_run, tmp_path, monkeypatch):
    from invobench.results import io as results_io

    suite, out = copy_run(tiny_run, tmp_path)
    full = out.read_text().splitlines(keepends=True)
    out.write_text("".join(full[:3]))  # header, roofline, one record: three records to go
    real_write, writes = os.write, []

    def disk_fills_after_one_record(fd, data):
        writes.append(len(data))
        if len(writes) > 1:  # the second record's line meets a full disk half-way
            real_write(fd, bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(results_io.os, "write", disk_fills_after_one_record)
    result = CliRunner().invoke(cli, ["run", suite, "--out", str(out), "--resume"])
    assert result.exit_code == 1 and "disk full at" in result.output and "--resume --out" in result.output
    printed = [line for line in result.output.splitlines() if line.startswith("ok ")]
    assert len(printed) == 1  # the record that could not be written is not shown as written
    monkeypatch.undo()
    after_failure = read_results(out)  # valid: the half line was rolled back
    assert len(after_failure.records) == 2 and out.read_text().endswith("\n")
    run_suite(RunConfig(suite=suite, out=out, resume=True))
    data = read_results(out)
    assert len(data.records) == 4 and len({r.case_id for r in data.records}) == 4 and not data.duplicate_case_ids()


def test_a_second_writer_is_refused_at_once_with_the_holders_pid(tiny_run, tmp_path, monkeypatch):
    from invobench.results import lock_results

    monkeypatch.setattr(WorkerProcess, "start", lambda self, *a, **k: pytest.fail("a refused writer must not measure"))
    suite, out = copy_run(tiny_run, tmp_path)
    before = out.read_bytes()
    with lock_results(out, command="invobench run tiny"):
        for resume in (True, False):
            with pytest.raises(RunnerError, match=rf"r\.jsonl is being written by PID {os.getpid()}"):
                run_suite(RunConfig(suite=suite, out=out, resume=resume))
        fresh = tmp_path / "fresh.jsonl"
        with lock_results(fresh):
            with pytest.raises(RunnerError, match="fresh.jsonl is being written by PID"):
                run_suite(RunConfig(suite=suite, out=fresh))
        result = CliRunner().invoke(cli, ["merge", str(tmp_path / "m.jsonl"), str(out)])
        assert result.exit_code == 0  # reading a locked file is fine; only writers exclude each other
    assert out.read_bytes() == before and not fresh.exists()


def test_merge_into_an_unwritable_place_reports_the_write_error_not_the_cleanups(tiny_run, tmp_path, monkeypatch):
    _, out = copy_run(tiny_run, tmp_path)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("invobench.bench.merge.os.replace", refuse)
    monkeypatch.setattr(Path, "unlink", lambda self, missing_ok=False: refuse())  # the cleanup fails too
    with pytest.raises(RunnerError, match=r"merge: cannot write .*merged\.jsonl: Permission denied"):
        merge_shards([out], tmp_path / "merged.jsonl")


def test_resume_refuses_a_file_of_another_suite_or_other_options(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setattr(WorkerProcess, "start", lambda self, *a, **k: pytest.fail("refusal must come before timing"))
    suite, out = copy_run(tiny_run, tmp_path)
    other = write_suite(tmp_path, TINY.replace("C: 8", "C: 16"), name="tiny.yaml")
    with pytest.raises(RunnerError, match=r"cannot resume .*r.jsonl: it holds a run of suite 'tiny' \(sha256"):
        run_suite(RunConfig(suite=other, out=out, resume=True))
    write_suite(tmp_path)  # the original suite again
    with pytest.raises(RunnerError, match=r"it was run with variants=None, this run has variants=\['conv.depthwise'\]"):
        run_suite(RunConfig(suite=str(tmp_path / "tiny.yaml"), out=out, resume=True, variants=["conv.depthwise"]))
    with pytest.raises(RunnerError, match=r"already exists; pass --resume"):
        run_suite(RunConfig(suite=str(tmp_path / "tiny.yaml"), out=out))


@pytest.mark.parametrize("kind", ["not-a-directory", "disk-full"])
def test_unwritable_out_fails_before_any_timing(tmp_path, monkeypatch, kind):
    monkeypatch.setattr(WorkerProcess, "start", lambda self, *a, **k: pytest.fail("timing started"))
    if kind == "not-a-directory":
        (tmp_path / "file").write_text("x")
        out, message = tmp_path / "file" / "r.jsonl", r"cannot create the directory of --out .*file/r.jsonl"
    else:
        if not Path("/dev/full").exists():
            pytest.skip("no /dev/full on this system")
        out, message = Path("/dev/full"), r"disk full at /dev/full .*The run stopped"
    with pytest.raises(RunnerError, match=message):
        run_suite(RunConfig(suite=write_suite(tmp_path), out=out))
    result = CliRunner().invoke(cli, ["run", write_suite(tmp_path), "--out", str(out)])
    assert result.exit_code == 1 and "Error:" in result.output


def test_shards_merge_into_one_run(tmp_path):
    suite = write_suite(tmp_path, TINY.replace("variants: [involution.eager, conv.depthwise]", "variants: [conv.depthwise]"))
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    run_suite(RunConfig(suite=suite, out=a, shard="1/2"))
    run_suite(RunConfig(suite=suite, out=b, shard="2/2"))
    ra, rb = read_results(a), read_results(b)
    assert len(ra.records) == 1 and len(rb.records) == 1 and ra.records[0].case_id != rb.records[0].case_id
    merged = tmp_path / "m.jsonl"
    result = CliRunner().invoke(cli, ["merge", str(merged), str(a), str(b)])
    assert result.exit_code == 0, result.output
    m = read_results(merged)
    assert {r.case_id for r in m.records} == {ra.records[0].case_id, rb.records[0].case_id}
    assert [x["shard"] for x in m.header.options["merged_from"]] == ["1/2", "2/2"] and len(m.rooflines) == 2
    with pytest.raises(RunnerError, match="the same shard appears twice"):
        merge_shards([a, a], tmp_path / "dup.jsonl")
    n, warnings = merge_shards([a], tmp_path / "half.jsonl")
    assert n == 1 and warnings == ["shards 2/2 are missing; the merged run is incomplete"]


def test_show_filters_and_csv(tiny_run):
    _, out, _ = tiny_run
    result = CliRunner().invoke(cli, ["show", str(out), "--variant", "depthwise", "--pass", "fwd"])
    assert result.exit_code == 0, result.output
    assert "conv.depthwise" in result.output and "involution.eager" not in result.output and "1 of 4 records" in result.output
    csv = CliRunner().invoke(cli, ["show", str(out), "--csv", "--family", "involution"])
    import io

    import pandas as pd

    df = pd.read_csv(io.StringIO(csv.output))
    assert list(df["variant"]) == ["involution.eager"] * 2 and (df["median_ms"] > 0).all() and "GB/s" in df.columns


def test_cli_run_reports_suite_errors_without_a_traceback(tmp_path):
    bad = write_suite(tmp_path, TINY.replace("involution.eager", "involution.eagre"))
    result = CliRunner().invoke(cli, ["run", bad, "--out", str(tmp_path / "r.jsonl")])
    assert result.exit_code == 1 and "Did you mean 'involution.eager'?" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(cli, ["run", write_suite(tmp_path), "--dtype", "float23", "--dry-run"])
    assert result.exit_code == 2 and "Did you mean 'float32'?" in result.output
    result = CliRunner().invoke(cli, ["run", write_suite(tmp_path), "--shard", "3/2", "--dry-run"])
    assert result.exit_code == 1 and "need 1 <= k <= n" in result.output


def test_killed_run_leaves_a_valid_file_and_resume_finishes_it(tmp_path):
    """SIGKILL the whole `invobench run` mid-sweep; the file reads (repairing at most a partial last line)."""
    suite = write_suite(tmp_path, TINY.replace("case_s: 0.02", "case_s: 0.3").replace("max_samples: 5", "max_samples: 1000")
                        .replace("min_samples: 3", "min_samples: 999"))
    out = tmp_path / "r.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "invobench", "run", suite, "--out", str(out)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not out.exists() or out.read_text().count('"type":"record"') < 1):
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = read_results(out, repair=True)
    assert 1 <= len(partial.records) < 4
    summary = run_suite(RunConfig(suite=suite, out=out, resume=True))
    data = read_results(out)
    assert len(data.records) == 4 and len({r.case_id for r in data.records}) == 4
    assert summary.already_done == len(partial.records)


def test_time_guard_skips_slow_variants_and_their_later_passes(tmp_path):
    suite = TINY.replace("timeout_s: 60}", "timeout_s: 60, max_call_s: 0.000001}")
    out = tmp_path / "r.jsonl"
    run_suite(RunConfig(suite=write_suite(tmp_path, suite), out=out, variants=["conv.depthwise"]))
    fwd, both = read_results(out).records
    assert (fwd.pass_, fwd.status, both.pass_, both.status) == ("fwd", "skipped", "fwd+bwd", "skipped")
    assert fwd.reasons[0].startswith("time guard: one call took") and fwd.info["time_guard_call_ms"] > 0
    assert both.reasons[0].startswith("time guard: its fwd pass on this case already took")
    assert both.duration_s is None  # never sent to the worker


def test_fault_variants_are_not_public_until_the_plugin_is_loaded():
    import fault_plugin

    keys = {v.key for v in registry.all_variants()}
    assert not keys & {f"involution.{n}" for n in fault_plugin.FAULTS}, "the fault variants leaked into the public registry"
