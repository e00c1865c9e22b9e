"""`invobench compare`: the statistics (bootstrap CI, Mann–Whitney U, verdicts), matching, normalisation, outputs, bad input."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats as scipy_stats

from invobench.commands.compare import command as compare_command
from invobench.report.compare import CompareError, compare_runs, describe_rule, to_json, to_markdown
from invobench.report.stats import (
    RatioEstimate, bootstrap_medians, case_rng, holm_adjust, mann_whitney_p, paired_ratio, quartiles, ratio_of_medians,
    verdict,
)
from invobench.results import read_results
from synthetic_results import HOSTILE, paper_cases, write_run

ROOT = Path(__file__).resolve().parents[2]


# ---- statistics --------------------------------------------------------------------------------

def test_ratio_of_constant_samples_is_exact():
    est = ratio_of_medians([2.0] * 10, [2.5] * 10)
    assert est.ratio == pytest.approx(1.25)
    assert (est.ci_low, est.ci_high) == (pytest.approx(1.25), pytest.approx(1.25))
    assert est.p_value < 1e-3
    assert (est.n_base, est.n_new) == (10, 10)


def test_quartiles_match_numpy_linear_interpolation():
    # hand example: 1..8 → q1 = 2.75, median = 4.5, q3 = 6.25 (numpy's default 'linear')
    assert quartiles([8, 1, 2, 3, 4, 5, 6, 7]) == (2.75, 4.5, 6.25)


def test_bootstrap_medians_shape_and_support():
    rng = np.random.default_rng(0)
    samples = np.array([1.0, 2.0, 3.0])
    medians = bootstrap_medians(samples, 500, rng)
    assert medians.shape == (500,)
    assert set(np.unique(medians)) <= {1.0, 2.0, 3.0}


def test_mann_whitney_matches_scipy_and_handles_degenerate_input():
    rng = np.random.default_rng(1)
    a, b = rng.normal(10, 1, 30), rng.normal(11, 1, 30)
    assert mann_whitney_p(a, b) == pytest.approx(scipy_stats.mannwhitneyu(b, a, alternative="two-sided").pvalue)
    assert mann_whitney_p(np.ones(5), np.ones(5)) == 1.0
    assert mann_whitney_p(np.ones(1), np.ones(5)) is None


def test_bootstrap_interval_covers_the_true_ratio_about_95_percent_of_the_time():
    # log-normal latencies with a true ratio of medians of 1.2; 300 simulated comparisons of 40 vs 40 samples
    rng = np.random.default_rng(42)
    covered = 0
    for k in range(300):
        base = np.exp(rng.normal(0.0, 0.1, 40))
        new = 1.2 * np.exp(rng.normal(0.0, 0.1, 40))
        est = ratio_of_medians(base, new, rng=np.random.default_rng(k), n_resamples=1000)
        covered += est.ci_low <= 1.2 <= est.ci_high
    assert 0.88 <= covered / 300 <= 0.99, f"coverage {covered / 300:.3f}"


def test_simulated_aa_comparisons_almost_never_flag():
    rng = np.random.default_rng(7)
    flagged = 0
    for k in range(400):
        base, new = np.exp(rng.normal(0.0, 0.15, 30)), np.exp(rng.normal(0.0, 0.15, 30))
        est = ratio_of_medians(base, new, rng=np.random.default_rng(k), n_resamples=1000)
        flagged += verdict(est, threshold=0.05, alpha=0.05) != "no change"
    assert flagged <= 2, f"{flagged} of 400 A/A comparisons flagged"


def test_bootstrap_is_seeded_and_independent_of_other_cases():
    base, new = [1.0, 1.1, 0.9, 1.05, 1.2, 0.95], [1.3, 1.2, 1.25, 1.4, 1.1, 1.35]
    first = ratio_of_medians(base, new, rng=case_rng(0, "00ff00ff00ff00ff"))
    again = ratio_of_medians(base, new, rng=case_rng(0, "00ff00ff00ff00ff"))
    other = ratio_of_medians(base, new, rng=case_rng(1, "00ff00ff00ff00ff"))
    assert (first.ci_low, first.ci_high) == (again.ci_low, again.ci_high)
    assert (first.ci_low, first.ci_high) != (other.ci_low, other.ci_high)


def test_normalisation_cancels_a_uniformly_faster_machine():
    rng = np.random.default_rng(3)
    ref_base, var_base = rng.lognormal(0, 0.05, 50), 4 * rng.lognormal(0, 0.05, 50)
    # NEW machine is 2× faster for everything; the variant itself did not change
    ref_new, var_new = 0.5 * rng.lognormal(0, 0.05, 50), 2 * rng.lognormal(0, 0.05, 50)
    plain = ratio_of_medians(var_base, var_new)
    norm = ratio_of_medians(var_base, var_new, base_reference=ref_base, new_reference=ref_new)
    assert plain.ratio == pytest.approx(0.5, rel=0.05)
    assert norm.ratio == pytest.approx(1.0, rel=0.05)
    assert norm.ci_low < 1.0 < norm.ci_high
    assert verdict(norm, 0.05, 0.05) == "no change"
    assert verdict(plain, 0.05, 0.05) == "improvement"


@pytest.mark.parametrize(
    "estimate, expected",
    [
        (RatioEstimate(1.20, 1.10, 1.30, 0.001, 30, 30), "regression"),
        (RatioEstimate(1.20, 1.04, 1.30, 0.001, 30, 30), "no change"),  # interval reaches below 1 + threshold
        (RatioEstimate(1.20, 1.10, 1.30, 0.20, 30, 30), "no change"),  # not significant
        (RatioEstimate(1.20, 1.10, 1.30, None, 30, 30), "no change"),  # no p-value
        (RatioEstimate(0.80, 0.70, 0.90, 0.001, 30, 30), "improvement"),
        (RatioEstimate(0.96, 0.955, 0.958, 0.001, 30, 30), "no change"),  # above 1/1.05 = 0.952
    ],
    ids=["regression", "ci-touches-threshold", "not-significant", "no-p", "improvement", "small-improvement"],
)
def test_verdict_rules(estimate, expected):
    assert verdict(estimate, threshold=0.05, alpha=0.05) == expected


def test_holm_adjustment_by_hand():
    # sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → running max 0.06
    adjusted = holm_adjust([0.01, 0.04, 0.03, None, 0.005])
    assert adjusted[3] is None
    assert [adjusted[i] for i in (0, 1, 2, 4)] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_adjust([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_verdict_uses_the_adjusted_p_value():
    estimate = RatioEstimate(1.20, 1.10, 1.30, 0.01, 30, 30)
    assert verdict(estimate, 0.05, 0.05) == "regression"
    assert verdict(estimate, 0.05, 0.05, p_value=0.24) == "no change"  # e.g. 0.01 among 24 cases under Holm


def test_ratio_rejects_bad_arguments():
    with pytest.raises(ValueError, match="no finite samples"):
        ratio_of_medians([], [1.0])
    with pytest.raises(ValueError, match="both"):
        ratio_of_medians([1.0], [1.0], base_reference=[1.0])
    with pytest.raises(ValueError, match="confidence"):
        ratio_of_medians([1.0], [1.0], confidence=1.5)


# ---- comparing results files ------------------------------------------------------------------

@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("compare")
    return {
        "base": write_run(d / "base.jsonl", run_id="base", seed=1),
        "same": write_run(d / "same.jsonl", run_id="same", seed=2),
        "slow": write_run(d / "slow.jsonl", run_id="slow", seed=3, slow={"involution.eager": 1.2}),
        # another machine, 1.5× faster at everything, where eager also got 20% slower
        "other": write_run(d / "other.jsonl", run_id="other", hostname="box-b", cpu="Faster CPU", seed=4, speed=1.5,
                           slow={"involution.eager": 1.2}),
        "nosamples": write_run(d / "nosamples.jsonl", run_id="nosamples", seed=5, keep_samples=False),
        "disjoint": write_run(d / "disjoint.jsonl", run_id="disjoint", seed=6, failures=False,
                              cases=[c.replace(B=7) for c in paper_cases()]),
    }


def _compare(runs, base, new, **kw):
    return compare_runs(read_results(runs[base]), read_results(runs[new]), **kw)


def test_same_code_twice_shows_no_change(runs):
    result = _compare(runs, "base", "same")
    counts = result.counts()
    assert counts["regression"] == counts["improvement"] == counts["broken"] == 0
    assert counts["no change"] == 80  # 4 variants × 10 cases × 2 passes, all ok
    assert counts["not judged"] == 4  # the skipped/oom/error/crashed records of both runs
    assert not result.gate_failures


def test_twenty_percent_slower_variant_is_flagged_and_nothing_else(runs):
    result = _compare(runs, "base", "slow")
    regressed = result.with_verdict("regression")
    assert {c.variant_key for c in regressed} == {"involution.eager"}
    assert len(regressed) == 20
    for case in regressed:
        assert case.ratio == pytest.approx(1.2, rel=0.05)
        assert case.ci_low > 1.05 and case.p_value < 0.05
    assert result.cases[0].verdict == "regression"  # the table starts with what fails the gate


def test_a_different_worker_environment_is_named_in_a_warning(tmp_path):
    """Runs before and after the workers' allocator default changed (GLIBC_TUNABLES) differ at large
    outputs by the page zeroing alone; compare says which recorded variables differ."""
    def run_with(name: str, env: dict) -> Path:
        path = write_run(tmp_path / f"{name}.jsonl", variants=["involution.eager"], failures=False)
        lines = path.read_text().splitlines()
        header = json.loads(lines[0])
        header["fingerprint"]["env"] = env
        path.write_text("\n".join([json.dumps(header)] + lines[1:]) + "\n")
        return path

    old = run_with("old", {"THP_MEM_ALLOC_ENABLE": "1"})
    new = run_with("new", {"THP_MEM_ALLOC_ENABLE": "1", "GLIBC_TUNABLES": "glibc.malloc.mmap_max=0"})
    [warning] = [w for w in compare_runs(read_results(old), read_results(new)).warnings if "environments" in w]
    assert "GLIBC_TUNABLES: unset vs 'glibc.malloc.mmap_max=0'" in warning
    assert "THP_MEM_ALLOC_ENABLE" not in warning  # equal on both sides
    same = run_with("same", {"THP_MEM_ALLOC_ENABLE": "1"})
    assert not any("environments" in w for w in compare_runs(read_results(old), read_results(same)).warnings)


def test_normalize_by_compares_machines_of_different_speed(runs):
    plain = _compare(runs, "base", "other")
    assert len(plain.with_verdict("improvement")) >= 55  # everything but eager looks faster on the faster machine
    norm = _compare(runs, "base", "other", normalize_by="depthwise")
    assert norm.normalize_by == "conv.depthwise"
    assert {c.variant_key for c in norm.with_verdict("regression")} == {"involution.eager"}
    assert len(norm.with_verdict("regression")) == 20
    assert not norm.with_verdict("improvement")
    assert len(norm.with_verdict("reference")) == 20
    assert not any("BASE ran on" in w for w in norm.warnings)  # the advice to normalise is not repeated
    assert any("BASE ran on" in w for w in plain.warnings)


def test_a_reference_that_moved_unevenly_is_warned_about(runs, tmp_path):
    # "other" is a uniformly faster machine: normalising is right there, and nothing is said
    assert not any("itself moved" in w for w in _compare(runs, "base", "other", normalize_by="depthwise").warnings)
    # the same code, but the reference 1.4× slower at half its cases (a shared host's state, not the code)
    lines = [json.loads(line) for line in runs["same"].read_text().splitlines()]
    depthwise = [ln for ln in lines if ln.get("type") == "record" and ln["variant"] == "depthwise" and ln["samples_ms"]]
    for line in depthwise[::2]:
        line["samples_ms"] = [1.4 * v for v in line["samples_ms"]]
    uneven = tmp_path / "uneven.jsonl"
    uneven.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    result = compare_runs(read_results(runs["base"]), read_results(uneven), normalize_by="depthwise")
    [warning] = [w for w in result.warnings if "itself moved" in w]
    low, high = (float(v) for v in warning.split("moved by ")[1].split("×")[0].split("–"))
    assert low == pytest.approx(1.0, abs=0.05) and high == pytest.approx(1.4, abs=0.07)
    assert f"across its {len(depthwise)} cases" in warning
    # without --normalize-by there is no reference to speak of
    assert not any("itself moved" in w for w in compare_runs(read_results(runs["base"]), read_results(uneven)).warnings)


def test_holm_correction_is_the_default_and_can_be_switched_off(runs):
    holm = _compare(runs, "base", "slow")
    none = _compare(runs, "base", "slow", correction="none")
    assert holm.correction == "holm" and none.correction == "none"
    for h, n in zip(holm.cases, none.cases):
        assert h.case_id == n.case_id and h.p_value == n.p_value
        if h.p_value is not None:
            assert h.p_adjusted >= h.p_value and n.p_adjusted == n.p_value
    assert "Holm-adjusted" in to_markdown(holm)
    with pytest.raises(CompareError, match="correction"):
        _compare(runs, "base", "slow", correction="bonferonni")


def test_unknown_normalize_variant_lists_the_variants(runs):
    with pytest.raises(CompareError, match=r"no such variant.*conv\.depthwise"):
        _compare(runs, "base", "same", normalize_by="conv.nope")


def test_missing_raw_samples_are_reported_not_judged(runs):
    result = _compare(runs, "base", "nosamples")
    unjudged = [c for c in result.with_verdict("not judged") if c.base_status == "ok"]
    assert len(unjudged) == 80
    assert "NEW has no raw samples" in unjudged[0].note
    assert unjudged[0].ratio is not None  # the ratio of the summary medians is still shown
    assert any("not judged" in w for w in result.warnings)


def test_no_common_cases_is_a_clear_error(runs):
    with pytest.raises(CompareError, match="no common cases"):
        _compare(runs, "base", "disjoint")


def test_ok_to_error_is_broken_and_fails_the_gate(tmp_path, runs):
    lines = runs["base"].read_text().splitlines()
    records = [json.loads(line) for line in lines]
    target = next(r for r in records if r.get("type") == "record" and r["status"] == "ok")
    target.update(status="error", error=f"RuntimeError: {HOSTILE}", samples_ms=[], stats=None)
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    result = compare_runs(read_results(runs["base"]), read_results(broken))
    assert [c.case_id for c in result.with_verdict("broken")] == [target["case_id"]]
    assert result.gate_failures
    md = to_markdown(result)
    assert "<script>" not in md and "&lt;script&gt;" in md


def test_markdown_and_json_outputs(runs):
    result = _compare(runs, "base", "slow")
    md = to_markdown(result)
    assert md.startswith("### invobench compare: ❌ performance regression")
    assert md.count("| regression |") == 40  # 20 in the notable table, 20 again under "All cases"
    assert "<details>" in md
    data = json.loads(to_json(result))
    assert data["counts"]["regression"] == 20 and data["gate_failures"] == 20
    assert {"case_id", "ratio", "ci_low", "ci_high", "p_value", "pass", "verdict"} <= set(data["cases"][0])


# ---- the command line -------------------------------------------------------------------------

def _cli(*args):
    return CliRunner().invoke(compare_command, [str(a) for a in args])


def test_cli_exit_codes_and_formats(runs, tmp_path):
    ok = _cli(runs["base"], runs["same"], "--fail-on-regression")
    assert ok.exit_code == 0, ok.output
    assert "84 common cases" in ok.output
    bad = _cli(runs["base"], runs["slow"], "--fail-on-regression", "--format", "md", "--html", tmp_path / "c.html")
    assert bad.exit_code == 1
    assert "FAIL: 20 case(s) regressed" in bad.output
    assert "### invobench compare" in bad.output
    page = (tmp_path / "c.html").read_text()
    assert page.count("Plotly.newPlot") == 1 and "fig-compare" in page
    no_gate = _cli(runs["base"], runs["slow"], "--format", "json")
    assert no_gate.exit_code == 0
    assert json.loads(no_gate.output)["counts"]["regression"] == 20


def test_cli_html_escapes_text_from_results(runs, tmp_path):
    lines = [json.loads(line) for line in runs["base"].read_text().splitlines()]
    lines[0]["run_id"] = HOSTILE
    hostile = tmp_path / "hostile.jsonl"
    hostile.write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    result = _cli(runs["base"], hostile, "--html", tmp_path / "h.html")
    assert result.exit_code == 0, result.output
    page = (tmp_path / "h.html").read_text()
    assert HOSTILE not in page
    assert html_escaped(HOSTILE) in page


def html_escaped(text: str) -> str:
    import html

    return html.escape(text, quote=True)


@pytest.mark.parametrize("problem", ["schema", "empty", "missing", "dir-with-two", "no-common", "partial"])
def test_cli_bad_input_is_a_clear_error_without_traceback(problem, runs, tmp_path):
    base = runs["base"]
    if problem == "schema":
        lines = base.read_text().splitlines()
        header = json.loads(lines[0])
        header["schema_version"] = 2
        new = tmp_path / "v2.jsonl"
        new.write_text("\n".join([json.dumps(header)] + lines[1:]) + "\n")
        expect = "schema 2 is newer than this invobench (1); upgrade invobench to read it"
    elif problem == "empty":
        new = tmp_path / "empty.jsonl"
        new.write_text("")
        expect = "empty results file"
    elif problem == "missing":
        new = tmp_path / "nope.jsonl"
        expect = "no such file"
    elif problem == "dir-with-two":
        new = tmp_path / "shards"
        new.mkdir()
        (new / "a.jsonl").write_text(base.read_text())
        (new / "b.jsonl").write_text(base.read_text())
        expect = "holds 2 results files"
    elif problem == "no-common":
        new = runs["disjoint"]
        expect = "no common cases"
    else:
        new = tmp_path / "partial.jsonl"
        new.write_text(base.read_text() + '{"type": "record", "case_id": "abc')
        expect = "partial last line"
    result = _cli(base, new)
    assert result.exit_code == 2
    assert expect in result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


def test_compare_is_discovered_by_the_invobench_cli(runs):
    out = subprocess.run([sys.executable, "-m", "invobench", "compare", str(runs["base"]), str(runs["slow"]),
                          "--fail-on-regression"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 1, out.stderr
    assert "regression" in out.stdout and "involution.eager" in out.stdout


def test_busy_host_is_reported(runs, tmp_path):
    lines = [json.loads(line) for line in runs["same"].read_text().splitlines()]
    for line in lines:
        if line.get("type") == "record":
            line["info"] = {"host_load": [8.9, 7.5, 6.0]}  # as the runner records it; the synthetic host has 2 cores
    busy = tmp_path / "busy.jsonl"
    busy.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    result = compare_runs(read_results(runs["base"]), read_results(busy))
    assert any(w.startswith("NEW ran on a busy host (1-minute load average up to 8.9 on 2 logical cores)") for w in result.warnings)
    assert not any(w.startswith("BASE ran on a busy host") for w in result.warnings)
    from invobench.report.page import build_report

    assert "1-min load average 8.9–8.9 on 2 logical cores (busy host" in build_report([read_results(busy)])


def test_bootstrap_wald_p_by_hand():
    from invobench.report.stats import bootstrap_wald_p

    # log ratio 0.2 with a bootstrap sd of 0.1 of the log ratio: z = 2, p = 2·Φ(−2) = 0.0455
    boot = np.exp(np.random.default_rng(0).normal(0.2, 0.1, 200_000))
    assert bootstrap_wald_p(float(np.exp(0.2)), boot) == pytest.approx(0.0455, abs=0.002)
    assert bootstrap_wald_p(1.0, np.ones(10)) == 1.0


# ---- paired samples of an A/B run --------------------------------------------------------------

def _rounds(rng, n, effect, round_sigma=0.3, sample_sigma=0.02):
    """n rounds of a shared host: each round's load scales both of its samples alike."""
    load = np.exp(rng.normal(0.0, round_sigma, n))
    base = 2.0 * load * np.exp(rng.normal(0.0, sample_sigma, n))
    new = 2.0 * effect * load * np.exp(rng.normal(0.0, sample_sigma, n))
    return base, new


def test_pairing_sees_a_ten_percent_change_that_round_to_round_load_hides_from_the_unpaired_test():
    rng = np.random.default_rng(3)
    base, new = _rounds(rng, 30, effect=1.10)
    paired = paired_ratio(base, new, rng=np.random.default_rng(0))
    unpaired = ratio_of_medians(base, new, rng=np.random.default_rng(0))
    assert verdict(paired, 0.05, 0.05) == "regression" and 1.08 < paired.ratio < 1.12 and paired.p_value < 1e-4
    assert verdict(unpaired, 0.05, 0.05) == "no change" and unpaired.ci_low < 1.0


def test_paired_aa_rounds_almost_never_flag():
    rng = np.random.default_rng(4)
    flags = sum(verdict(paired_ratio(*_rounds(rng, 20, effect=1.0), rng=rng), 0.05, 0.05) != "no change"
                for _ in range(200))
    assert flags <= 2


def test_paired_ratio_needs_equal_counts_and_says_so():
    with pytest.raises(ValueError, match="equal counts"):
        paired_ratio([1.0, 2.0], [1.0])
    assert paired_ratio([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]).p_value == 1.0


def _ab_sides(tmp_path, slow=None, pair=("ab-1", "ab-1")):
    """Two sides of one A/B run (their headers share a pair id); synthetic samples with little noise."""
    paths = []
    for side, pair_id, seed in (("base", pair[0], 1), ("new", pair[1], 2)):
        path = write_run(tmp_path / f"{side}.jsonl", run_id=f"{pair_id}-{side}", seed=seed, failures=False,
                         slow=slow if side == "new" else None, sigma=0.02)
        run = read_results(path)
        header = run.header.model_copy(update={"options": {"ab": {"side": side, "pair_run_id": pair_id}}})
        lines = [header, *run.rooflines, *run.records]
        path.write_text("".join(line.model_dump_json(by_alias=True) + "\n" for line in lines))
        paths.append(path)
    return [read_results(p) for p in paths]


def test_compare_pairs_the_sides_of_one_ab_run_and_only_those(tmp_path):
    base, new = _ab_sides(tmp_path, slow={"involution.eager": 1.2})
    comparison = compare_runs(base, new)
    assert comparison.paired and "Wilcoxon" in describe_rule(comparison)
    assert all(c.note == "paired by round" for c in comparison.cases if c.verdict != "not judged")
    flagged = {c.variant_key for c in comparison.with_verdict("regression")}
    assert flagged == {"involution.eager"}
    other_base, other_new = _ab_sides(tmp_path / "x", pair=("ab-1", "ab-2"))  # two different A/B runs
    assert not compare_runs(other_base, other_new).paired
