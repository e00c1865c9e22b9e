"""`invobench profile` (torch.profiler table + Chrome trace, the ncu command line, --static)."""
from __future__ import annotations

import json
import shlex

import pytest

from click.testing import CliRunner

from invobench.cli import cli
from invobench.commands.profile import ncu_command


def test_profile_prints_top_ops_and_writes_a_chrome_trace(tmp_path):
    trace = tmp_path / "t.json"
    result = CliRunner().invoke(cli, ["profile", "--variant", "involution.unfold", "--C", "8", "--size", "10", "--K", "3",
                                      "--group-channels", "4", "--pass", "fwd+bwd", "--warmup", "1", "--iters", "2",
                                      "--trace", str(trace)])
    assert result.exit_code == 0, result.output
    assert "invobench::involution_unfold" in result.output and "Self CPU" in result.output
    assert "involution.unfold fwd+bwd B1 C8 10x10 K3 G2" in result.output
    events = json.loads(trace.read_text())["traceEvents"]
    assert any("involution.unfold fwd+bwd #1" in e.get("name", "") for e in events)


def test_profile_refuses_a_case_the_variant_cannot_run():
    result = CliRunner().invoke(cli, ["profile", "--variant", "involution.eager", "--device", "cuda", "--no-trace"])
    if "no CUDA device" in result.output:  # this machine has no GPU: a reason, not a traceback
        assert result.exit_code == 1 and "cannot run" in result.output
    result = CliRunner().invoke(cli, ["profile", "--variant", "involution.eagre", "--no-trace"])
    assert result.exit_code == 2 and "Did you mean 'involution.eager'?" in result.output


def test_ncu_command_reruns_the_same_case_once():
    cmd = ncu_command(["--variant", "involution.cuda", "--B", "32", "--device", "cuda", "--iters", "9", "--trace", "x.json"],
                      "involution", "out/ncu-x")
    argv = shlex.split(cmd)
    assert argv[:3] == ["ncu", "--set", "full"] and "regex:involution" in argv and "out/ncu-x" in argv
    tail = argv[argv.index("profile") + 1:]
    assert tail == ["--variant", "involution.cuda", "--B", "32", "--device", "cuda", "--iters", "1", "--warmup", "1", "--no-trace"]


def test_profile_static_table_has_a_row_per_kernel_config_arch(monkeypatch):
    from invobench.ops.involution import static_profile
    from invobench.ops.involution.ptxas import StaticKernelProfile

    fake = [StaticKernelProfile("cuda", "fwd_tiled", "K=7 block=8x16", f"sm_{a}", "float32", 87 + a // 10, 31680, 0, 0)
            for a in (90, 80)]
    monkeypatch.setattr(static_profile, "collect", lambda archs, dtypes: (fake, ["triton: not available (test)"]))
    result = CliRunner().invoke(cli, ["profile", "--static", "--arch", "80", "--arch", "90"])
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines() if "fwd_tiled" in line]
    assert [r[4] for r in rows] == ["sm_80", "sm_90"] and [r[6] for r in rows] == ["95", "96"]
    assert "note: triton: not available (test)" in result.output


@pytest.mark.slow
def test_profile_static_prints_a_table_or_says_why_not():
    result = CliRunner().invoke(cli, ["profile", "--static", "--arch", "80"])
    assert result.exit_code == 0, result.output
    assert "registers" in result.output or "no static profiles" in result.output


def test_list_for_one_device_shows_only_its_variants_and_whether_they_run_there(monkeypatch):
    import json

    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rows = json.loads(CliRunner().invoke(cli, ["list", "--device", "cuda", "--family", "involution", "--json"]).output)
    assert {r["variant"] for r in rows} >= {"involution.cuda", "involution.triton", "involution.eager"}
    assert "involution.cpu" not in {r["variant"] for r in rows}  # a CPU-only variant is not listed for cuda
    assert all(not r["available"] and any("no CUDA device" in x for x in r["reasons"]) for r in rows)
    cpu = json.loads(CliRunner().invoke(cli, ["list", "--device", "cpu", "--family", "involution", "--json"]).output)
    assert {r["variant"]: r["available"] for r in cpu}["involution.eager"] is True
    assert "involution.cuda" not in {r["variant"] for r in cpu}
