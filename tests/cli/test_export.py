"""`invobench export` (tidy rows for pandas, spreadsheets, databases) and `invobench show --view verdict`."""
from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from invobench.cli import cli
from invobench.results import read_results
from synthetic_results import write_run

REFERENCE = Path(__file__).resolve().parents[2] / "results" / "amd-epyc-avx512-2c"


def test_export_of_a_reference_run_loads_back_with_read_csv_to_the_same_records_and_medians(tmp_path):
    source = REFERENCE / "paper.jsonl"
    out = tmp_path / "sub" / "paper.csv"
    result = CliRunner().invoke(cli, ["export", str(source), "-o", str(out)])
    assert result.exit_code == 0, result.output
    run = read_results(source)
    df = pd.read_csv(out)
    assert len(df) == len(run.records) == 424
    assert f"{len(run.records):,} records from 1 run(s)" in result.output
    by_id = df.set_index(["case_id"])
    assert by_id.index.is_unique
    for record in run.records:
        row = by_id.loc[record.case_id]
        assert row["status"] == record.status and row["variant"] == f"{record.family}.{record.variant}"
        assert row["pass"] == record.pass_
        if record.stats is None:
            assert pd.isna(row["median_ms"])
        else:
            assert row["median_ms"] == pytest.approx(record.stats.median_ms, rel=1e-12)
            assert row["q1_ms"] == pytest.approx(record.stats.q1_ms, rel=1e-12)
        assert row["C"] == record.case["C"] and row["stride"] == record.case["stride"]
        assert row["count_macs_fwd"] == record.counts["macs_fwd"]
    # every column name is a plain identifier: usable in SQL and as a pandas attribute
    assert all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", c) for c in df.columns), list(df.columns)
    fingerprint = run.header.fingerprint
    assert set(df["git_commit"]) == {fingerprint.git.commit} and set(df["cpu_simd"]) == {"avx512"}
    assert set(df["torch_version"]) == {fingerprint.torch.version}
    ok = df[df["status"] == "ok"]
    assert ok["roofline_matmul_gflops"].iloc[0] == pytest.approx(run.rooflines[0].matmul_peak_flops / 1e9)
    assert ok["peak_bytes"].notna().all() and (ok["peak_bytes"] > 0).all()


def test_export_of_several_files_as_json_keeps_each_machine(tmp_path):
    a = write_run(tmp_path / "a.jsonl", run_id="run-a", seed=1, failures=False)
    b = write_run(tmp_path / "b.jsonl", run_id="run-b", hostname="box-b", cpu="Faster CPU", speed=1.5, seed=2,
                  failures=False)
    result = CliRunner().invoke(cli, ["export", str(a), str(b), "--format", "json"])
    assert result.exit_code == 0, result.output
    df = pd.read_json(io.StringIO(result.stdout))
    assert len(df) == len(read_results(a).records) + len(read_results(b).records) == 160
    assert df.groupby("run_id")["hostname"].unique().map(list).to_dict() == {"run-a": ["box-a"], "run-b": ["box-b"]}
    first = read_results(a).records[0]
    row = df[(df["run_id"] == "run-a") & (df["case_id"] == first.case_id)].iloc[0]
    assert row["median_ms"] == pytest.approx(first.stats.median_ms, rel=1e-12)


def test_export_of_a_missing_file_is_one_line_not_a_traceback(tmp_path):
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2
    assert "no such file or directory" in result.output and "Traceback" not in result.output


def test_show_verdict_prints_the_bottom_line_and_the_variant_to_use_as_markdown():
    result = CliRunner().invoke(cli, ["show", str(REFERENCE / "paper.jsonl"), "--view", "verdict", "--format", "md"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("On AMD EPYC avx512 (2 threads, float32), the fastest involution (")
    assert "local self-attention" in lines[0] and "unfold, the paper's reference form, is" in lines[0]
    assert lines[2].startswith("- cpu float32: use involution.")
    table = [line for line in lines if line.startswith("| ")]
    assert table[0].startswith("| case | pass | fastest involution | median ms | × depthwise conv | × grouped conv | "
                               "× dense conv | × local self-attention |")
    assert len(table) == 1 + 14 * 3  # every case of the paper suite × fwd, bwd, fwd+bwd
