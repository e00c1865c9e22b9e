"""Results files never lose data: whole lines or none, one writer at a time, repair only what a kill leaves,
newer writers' fields kept, and every unreadable line named."""
from __future__ import annotations

import errno
import json
import os

import pytest

from invobench.results import (
    SCHEMA_FILE, ResultsFileError, ResultsLockedError, ResultsWriteError, RunHeader, SuiteRef, append_line, json_schema,
    lock_results, read_results,
)
from invobench.results import io as results_io
from synthetic_results import write_run


def _header() -> RunHeader:
    return RunHeader(run_id="r", suite=SuiteRef(name="s", sha256="0" * 64), fingerprint={"hostname": "h"})


def test_the_committed_json_schema_is_the_one_the_models_generate():
    assert json.loads(SCHEMA_FILE.read_text()) == json_schema()


# ---- a full disk --------------------------------------------------------------------------------

def test_a_short_write_is_retried_until_the_whole_line_is_written(tmp_path, monkeypatch):
    out = tmp_path / "r.jsonl"
    real_write = os.write
    monkeypatch.setattr(results_io.os, "write", lambda fd, data: real_write(fd, bytes(data)[:7]))  # 7 bytes a call
    append_line(out, _header())
    assert read_results(out).header.run_id == "r"


def test_a_disk_that_fills_mid_line_leaves_the_file_at_its_last_complete_line(tmp_path, monkeypatch):
    out = tmp_path / "r.jsonl"
    append_line(out, _header())
    before = out.read_bytes()
    real_write = os.write

    def full_after_some(fd, data):  # the disk takes 20 bytes of the line, then is full
        if os.fstat(fd).st_size >= len(before) + 20:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, bytes(data)[:20])

    monkeypatch.setattr(results_io.os, "write", full_after_some)
    with pytest.raises(ResultsWriteError, match=r"disk full at .*r\.jsonl \(the partial line was rolled back"):
        append_line(out, _header().model_copy(update={"run_id": "second"}))
    monkeypatch.undo()
    assert out.read_bytes() == before  # not one byte of the partial line is left
    assert read_results(out).header.run_id == "r"  # valid, so `--resume` can go on from it


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 96 KiB tmpfs (needs root and mount); skipped where that is not possible."""
    mountpoint = tmp_path / "small"
    mountpoint.mkdir()
    if os.geteuid() != 0 or os.system(f"mount -t tmpfs -o size=96k tmpfs {mountpoint} 2>/dev/null") != 0:
        pytest.skip("mounting a small tmpfs needs root (the injected-writer tests cover the same path)")
    yield mountpoint
    os.system(f"umount {mountpoint}")


def test_on_a_real_full_filesystem_append_raises_and_the_file_stays_valid(small_tmpfs):
    out = small_tmpfs / "r.jsonl"
    append_line(out, _header())
    filler = small_tmpfs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:  # fill the file system up to its last bytes
        while os.write(fd, b"x" * 512):
            pass
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    size = out.stat().st_size
    with pytest.raises(ResultsWriteError, match="disk full at"):
        for i in range(200):
            append_line(out, _header().model_copy(update={"run_id": f"r{i}", "options": {"pad": "y" * 2000}}))
    assert out.stat().st_size >= size and out.read_bytes().endswith(b"\n")
    filler.unlink()
    lines = out.read_bytes().split(b"\n")
    assert all(json.loads(line) for line in lines if line)  # every line that is there is whole


# ---- two writers ---------------------------------------------------------------------------------

def test_a_second_writer_is_refused_with_the_holders_pid_until_the_first_releases(tmp_path):
    out = tmp_path / "r.jsonl"
    with lock_results(out, command="invobench run smoke"):
        with pytest.raises(ResultsLockedError, match=rf"being written by PID {os.getpid()} .*invobench run smoke"):
            lock_results(out)
    with lock_results(out) as again:
        assert again.took_over is None  # released cleanly: nothing to take over
    assert not (tmp_path / "r.jsonl.lock").exists()


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    out = tmp_path / "r.jsonl"
    # what a killed run leaves: the lock file with its holder's facts, and no process holding the flock
    (tmp_path / "r.jsonl.lock").write_text(json.dumps({"pid": 999999, "host": "gone", "command": "invobench run x"}))
    with lock_results(out) as held:
        assert held.took_over["pid"] == 999999
        assert json.loads((tmp_path / "r.jsonl.lock").read_text())["pid"] == os.getpid()


# ---- what --resume may repair ---------------------------------------------------------------------

def test_only_a_line_without_its_final_newline_is_a_partial_line(tmp_path):
    path = write_run(tmp_path / "a.jsonl", seed=1)
    text = path.read_text()
    n = len(read_results(path).records)
    path.write_text(text + text.splitlines()[-1][:40])  # killed mid-write: no final newline
    with pytest.raises(ResultsFileError, match=r"a partial last line \(no final newline\)"):
        read_results(path)
    repaired = read_results(path, repair=True)
    assert repaired.dropped_partial_line and len(repaired.records) == n and path.read_text() == text


def test_a_complete_last_line_that_does_not_validate_is_refused_never_truncated(tmp_path):
    path = write_run(tmp_path / "a.jsonl", seed=1)
    last = json.loads(path.read_text().splitlines()[-1])
    last["status"] = "exploded"
    bad = path.read_text() + json.dumps(last) + "\n"
    path.write_text(bad)
    number = len(bad.splitlines())
    with pytest.raises(ResultsFileError, match=rf"a\.jsonl:{number}: not a valid record line: status"):
        read_results(path, repair=True)
    assert path.read_text() == bad


# ---- newer writers and lines that are not results lines --------------------------------------------

def test_unknown_fields_of_a_newer_v1_writer_are_read_and_kept(tmp_path):
    path = write_run(tmp_path / "a.jsonl", seed=1)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    lines[-1]["energy_j"] = 1.5
    lines[0]["fingerprint"]["gpu_clock_mhz"] = 1980
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    run = read_results(path, repair=True)
    assert run.records[-1].model_extra == {"energy_j": 1.5}
    assert json.loads(run.records[-1].to_json())["energy_j"] == 1.5  # a rewrite keeps it
    assert json.loads(run.header.model_dump_json())["fingerprint"]["gpu_clock_mhz"] == 1980


def test_a_file_of_a_newer_schema_is_refused_by_name(tmp_path):
    path = tmp_path / "v2.jsonl"
    path.write_text(json.dumps({"type": "header", "schema_version": 2, "totally": "different"}) + "\n")
    with pytest.raises(ResultsFileError, match=r"v2\.jsonl:1: schema 2 is newer than this invobench \(1\); upgrade"):
        read_results(path)


@pytest.mark.parametrize("line, expected", [
    ({"foo": 1}, 'not a results line: no "type" field'),
    ({"type": "sample", "x": 1}, "not a results line: \"type\": 'sample'"),
    ([1, 2], "not a results line: a JSON list"),
    ({"type": "record", "family": "involution"}, "not a valid record line: missing case_id, variant, pass, case, label, status"),
])
def test_a_line_that_is_not_a_results_line_is_named_with_what_it_lacks(tmp_path, line, expected):
    path = write_run(tmp_path / "a.jsonl", seed=1)
    text = path.read_text()
    path.write_text(text + json.dumps(line) + "\n")
    with pytest.raises(ResultsFileError) as info:
        read_results(path)
    assert f"a.jsonl:{len(text.splitlines()) + 1}: {expected}" in str(info.value)
    assert "validation errors for" not in str(info.value)


@pytest.mark.parametrize("bad", [float("nan"), 0.0, -1.0, float("inf")])
def test_a_latency_that_is_not_a_positive_finite_number_is_refused(tmp_path, bad):
    path = write_run(tmp_path / "a.jsonl", seed=1)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    record = next(i for i, line in enumerate(lines) if line.get("samples_ms"))
    lines[record]["samples_ms"][2] = bad
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))  # json writes NaN, Infinity
    with pytest.raises(ResultsFileError, match=rf":{record + 1}: .*samples_ms\[2\] must be a finite number > 0"):
        read_results(path)


def test_repeated_case_ids_are_reported(tmp_path):
    path = write_run(tmp_path / "a.jsonl", seed=1)
    text = path.read_text()
    path.write_text(text + text.splitlines()[-1] + "\n")
    run = read_results(path)
    assert list(run.duplicate_case_ids().values()) == [2]
    assert "1 case id(s) appear more than once (1 extra records" in run.duplicate_warning()
