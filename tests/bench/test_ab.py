"""`invobench ab`: BASE's package loaded beside NEW's, twin variants, and the split into two results files."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from invobench.bench import ab
from invobench.bench.cases import BenchItem
from invobench.core import Case
from invobench.results import case_id, read_results

REPO = Path(__file__).resolve().parents[2]


def test_plain_variant_strips_only_the_base_suffix():
    assert ab.plain_variant("eager@base") == "eager" and ab.plain_variant("eager") == "eager"
    assert ab.plain_variant("base") == "base"


def test_prepare_base_renames_the_package_but_not_kernel_symbols(tmp_path):
    commit = ab.prepare_base("HEAD", tmp_path)
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert commit == head
    pkg = tmp_path / ab.PACKAGE
    registry = (pkg / "registry.py").read_text()
    assert "from invobench_base.workloads import builtin_variants" in registry and "from invobench." not in registry
    leftovers = [p for p in pkg.rglob("*.py") if ab._WORD.search(p.read_text())]
    assert leftovers == []
    cpu = (pkg / "ops" / "involution" / "cpu.py").read_text()
    assert "-DINVOBENCH_OPS_NAMESPACE=" in cpu  # the flag's name stays; its value follows the renamed namespace
    for name in ("involution_cpu.cpp", "involution_cpu_ops.cpp"):  # C++ keeps its text (and its C symbols)
        src = REPO / "invobench" / "ops" / "involution" / "csrc" / name
        assert (pkg / "ops" / "involution" / "csrc" / name).read_bytes() == src.read_bytes()


def test_prepare_base_says_what_is_wrong_with_a_bad_revision(tmp_path):
    with pytest.raises(ab.ABError, match=r"--base 'no-such-branch' is not a commit"):
        ab.prepare_base("no-such-branch", tmp_path)


PROBE = """
import json, os, torch
from invobench import registry
from invobench.registry import load_plugins
load_plugins()
case = registry.Case(B=1, C=8, H=6, W=7, K=3, G=2)
torch.manual_seed(0)
new = registry.get("involution.eager").build(case, False)
torch.manual_seed(0)
base = registry.get("involution.eager@base").build(case, False)
cpu_same = None  # the C++ ops of both checkouts in one process: each library registers its own namespace
if not registry.get("involution.cpu").why_not(case):
    results = []
    for key in ("involution.cpu", "involution.cpu@base"):
        torch.manual_seed(0)
        work = registry.get(key).build(case, True)
        out = work.fn()
        out.backward(torch.ones_like(out))
        results.append([out.detach(), *(t.grad for t in work.inputs)])
    cpu_same = all(torch.equal(a, b) for a, b in zip(*results))
print(json.dumps({
    "twins": sorted(v.key for v in registry.all_variants() if v.key.endswith("@base")),
    "same_output": bool(torch.equal(new.fn(), base.fn())),
    "cpu_same": cpu_same,
    "base_module": getattr(base.fn, "__module__", None), "new_module": getattr(new.fn, "__module__", None),
}))
"""


def test_plugin_registers_base_twins_that_run_base_code(tmp_path):
    ab.prepare_base("HEAD", tmp_path)
    env = {**os.environ, ab.BASE_ENV: str(tmp_path), ab.BASE_REF_ENV: "HEAD", "INVOBENCH_PLUGINS": ab.PLUGIN}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"involution.eager@base", "involution.cpu@base", "conv.depthwise@base"} <= set(got["twins"])
    assert got["same_output"]  # the same code at HEAD: the same numbers from the same inputs
    from invobench.ops.involution import cpu

    assert got["cpu_same"] is (None if cpu.requirements() else True)  # None: no compiler here
    assert got["base_module"].startswith("invobench_base.") and got["new_module"].startswith("invobench.")


def test_without_the_environment_the_plugin_registers_nothing(monkeypatch):
    from invobench import registry

    monkeypatch.delenv(ab.BASE_ENV, raising=False)
    before = {v.key for v in registry.all_variants()}
    ab.register_plugin()
    assert {v.key for v in registry.all_variants()} == before


def test_add_twins_puts_each_twin_beside_its_item():
    case = Case(B=1, C=8, H=6, W=6)
    items = [BenchItem(case, "involution", name, "fwd", case_id("involution", name, "fwd", case.as_dict()))
             for name in ("eager", "cpu")]
    got = ab.add_twins(items, {"involution.eager@base"})
    assert [i.variant for i in got] == ["eager", "eager@base", "cpu"]
    assert got[1].case_id == case_id("involution", "eager@base", "fwd", case.as_dict()) != got[0].case_id


def test_split_gives_two_files_whose_case_ids_match(tmp_path):
    from invobench.results import append_line
    from synthetic_results import write_run

    plain = write_run(tmp_path / "plain.jsonl", variants=("involution.eager", "conv.depthwise"), failures=False)
    run = read_results(plain)
    combined = tmp_path / "ab.jsonl"
    for line in [run.header, *run.rooflines]:
        append_line(combined, line)
    for record in run.records:  # each record and a BASE twin, as an A/B run writes them
        twin = record.variant + ab.SUFFIX
        append_line(combined, record)
        append_line(combined, record.model_copy(update={
            "variant": twin, "case_id": case_id(record.family, twin, record.pass_, record.case)}))
    n_base, n_new = ab.split(combined, tmp_path / "base.jsonl", tmp_path / "new.jsonl", "f" * 40)
    base, new = read_results(tmp_path / "base.jsonl"), read_results(tmp_path / "new.jsonl")
    assert n_base == len(base.records) == n_new == len(new.records) == len(run.records)
    assert {r.variant for r in base.records} == {r.variant for r in new.records} == {"eager", "depthwise"}
    assert [r.case_id for r in base.records] == [r.case_id for r in new.records] == [r.case_id for r in run.records]
    assert base.header.fingerprint.git.commit == "f" * 40
    assert new.header.fingerprint.git == run.header.fingerprint.git
    assert base.header.options["ab"]["side"] == "base" and new.header.options["ab"]["side"] == "new"
    assert base.rooflines == new.rooflines == run.rooflines


GATE_SUITE = """
name: ab-check
description: two eager cases and their depthwise peers, forward, for the A/B gate check
variants: [involution.eager, conv.depthwise]
budget: {warmup_s: 0.05, case_s: 0.3, min_samples: 5, max_samples: 40, rel_iqr: 0.05, timeout_s: 120}
roofline: {copy_mib: 16, matmul_max_n: 256, time_s: 0.05}
defaults: {device: cpu, dtype: float32, level: op, B: 1, K: 7, group_channels: 16, pass: fwd}
sweeps:
  - zip: {C: [64, 128], size: [28, 28], stride: [1, 2]}
"""


def _ab(tmp_path, name, slow=None):
    suite = tmp_path / "ab-check.yaml"
    suite.write_text(GATE_SUITE)
    env = {k: v for k, v in os.environ.items() if k not in ("INVOBENCH_PLUGINS", "INVOBENCH_SLOW_EAGER")}
    if slow:
        env.update(INVOBENCH_PLUGINS=str(REPO / "tests" / "harness" / "gate_harness.py"), INVOBENCH_SLOW_EAGER=str(slow))
    out = subprocess.run([sys.executable, "-m", "invobench", "ab", str(suite), "--base", "HEAD", "--out-dir",
                          str(tmp_path / name), "--threads", "1", "--alpha", "0.01", "--format", "json",
                          "--fail-on-regression"], env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode in (0, 1), out.stderr[-3000:]
    return out.returncode, json.loads(out.stdout)


def test_ab_run_passes_an_aa_check_and_fails_the_slowed_eager(tmp_path):
    """Real measurements, the issue's check: BASE = HEAD against this checkout (A/A), then against this
    checkout with eager doing 20 % extra taps. alpha = 0.01 (stricter than the CLI's 0.05, for both
    checks) keeps this test's own false-alarm rate at most 1 %; measured: 0 of 4 smoke A/A runs flagged
    anything at 0.05, 4 of 4 slowed runs failed (docs/gate.md)."""
    rc, aa = _ab(tmp_path, "aa")
    assert rc == 0 and aa["counts"]["regression"] == 0 and aa["paired"]
    assert all(c["note"] == "paired by round" and c["n_base"] == c["n_new"] >= 20 for c in aa["cases"])
    rc, slowed = _ab(tmp_path, "slowed", slow=0.20)
    flagged = {c["variant"] for c in slowed["cases"] if c["verdict"] == "regression"}
    assert rc == 1 and flagged == {"eager"}


def test_ab_rejects_an_unknown_dtype_before_extracting_or_running_anything(tmp_path):
    from click.testing import CliRunner

    from invobench.cli import cli

    result = CliRunner().invoke(cli, ["ab", "smoke", "--base", "HEAD", "--dtype", "flaot32", "--out-dir", str(tmp_path / "x")])
    assert result.exit_code == 2 and "'flaot32' is not a dtype. Did you mean 'float32'?" in result.output
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("command", ["run", "ab"])
def test_a_thread_count_below_one_is_a_usage_error(command, tmp_path):
    from click.testing import CliRunner

    from invobench.cli import cli

    extra = ["--base", "HEAD", "--out-dir", str(tmp_path / "x")] if command == "ab" else ["--dry-run"]
    result = CliRunner().invoke(cli, [command, "smoke", "--threads", "0", *extra])
    assert result.exit_code == 2 and "'--threads': 0 is not in the range x>=1" in result.output
    assert not (tmp_path / "x").exists()
