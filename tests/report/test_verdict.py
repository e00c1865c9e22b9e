"""The verdict, the machine view, the case axes and the model section, on results whose answer is known."""
from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from invobench.models.complexity import PUBLISHED
from invobench.report.cases import case_labels, is_size_ladder, use_case_axis
from invobench.report.page import build_report
from invobench.report.verdict import build_verdicts, fmt_x, machine_points, ratio_phrase
from invobench.report.verdict_figures import heatmap_figure, machine_figure
from invobench.results import read_results
from synthetic_results import paper_cases, write_run

ALL = ("involution.eager", "involution.unfold", "involution.compile", "conv.depthwise", "conv.grouped", "conv.dense",
       "attention.unfold")
#: each variant's median as a multiple of the depthwise conv's (1 ms × B at every case and pass)
KNOWN = {"involution.eager": 2.0, "involution.unfold": 6.0, "conv.depthwise": 1.0, "conv.grouped": 1.0,
         "conv.dense": 8.0, "attention.unfold": 20.0}


def payload(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="ib-data">(.*?)</script>', page, re.S)
    return json.loads(match.group(1))


def known(variant: str, case, pass_: str) -> float:
    return KNOWN[variant] * case.B * (3.0 if pass_ == "fwd+bwd" else 1.0)


@pytest.fixture(scope="module")
def known_run(tmp_path_factory):
    path = write_run(tmp_path_factory.mktemp("verdict") / "known.jsonl", variants=tuple(KNOWN), sigma=0.0, n_samples=7,
                     failures=True, latency=known)
    return read_results(path)


def test_a_variant_exactly_twice_the_depthwise_conv_gives_cells_of_two(known_run):
    verdict = build_verdicts([known_run])[0]
    assert len(verdict.cells) == 20  # 10 cases × 2 passes; the failure records (skipped, oom, error, crashed) add none
    assert verdict.passes == ["fwd", "fwd+bwd"]
    for cell in verdict.cells:
        assert cell.fastest == "involution.eager"
        assert cell.ratios["conv.depthwise"] == 2.0
        assert cell.ratios["conv.grouped"] == 2.0
        assert cell.ratios["conv.dense"] == pytest.approx(0.25)
        assert cell.ratios["attention"] == pytest.approx(0.1)
        assert cell.against["attention"] == "attention.unfold"
        assert cell.runner_up == ("involution.unfold", pytest.approx(3.0))
    assert verdict.unfold == [pytest.approx(3.0)] * 20
    assert verdict.bottom_line == (
        "On Synthetic CPU @ 2.0GHz (2 threads, float32), the fastest involution (eager) is 2× slower than the "
        "depthwise conv, 2× slower than the grouped conv, 4× faster than the dense conv and 10× faster than local "
        "self-attention; unfold, the paper's reference form, is 3× slower than the fastest.")
    (recommendation,) = verdict.recommendations
    assert (recommendation.device, recommendation.dtype, recommendation.variant) == ("cpu", "float32", "involution.eager")
    assert (recommendation.wins, recommendation.cells, recommendation.behind) == (20, 20, None)
    assert recommendation.margin == pytest.approx(3.0) and recommendation.runner_up == "involution.unfold"
    assert recommendation.sentence() == ("cpu float32: use involution.eager — fastest at 20 of 20 cells, by a median 3× "
                                         "over the next fastest (involution.unfold).")


def test_cases_keep_suite_order_and_short_labels(known_run):
    verdict = build_verdicts([known_run])[0]
    assert verdict.cases[:4] == ["C64 56² K7 G4", "C128 28² K7 G8", "C256 14² K7 G16", "C512 7² K7 G32"]
    assert verdict.cases[4:] == ["C256 14² K7 G1", "C256 14² K7 G4", "C256 14² K7 G64", "C256 14² K3 G16",
                                 "C256 14² K5 G16", "C256 14² K9 G16"]


def test_the_heatmap_selector_restyles_to_each_denominator(known_run):
    verdict = build_verdicts([known_run])[0]
    figure = heatmap_figure(verdict)
    (trace,) = figure.data
    assert trace["type"] == "heatmap" and trace["x"] == ["fwd", "fwd+bwd"] and len(trace["y"]) == 10
    assert all(z == pytest.approx(1.0) for row in trace["z"] for z in row)  # log2(2): the depthwise conv first
    assert all(t == "eager<br>2×" for row in trace["text"] for t in row)
    (menu,) = figure.layout["updatemenus"]
    assert [b["label"] for b in menu["buttons"]] == ["÷ depthwise conv", "÷ grouped conv", "÷ dense conv",
                                                   "÷ local self-attention"]
    expected = {"÷ depthwise conv": 1.0, "÷ grouped conv": 1.0, "÷ dense conv": -2.0, "÷ local self-attention": math.log2(0.1)}
    for button in menu["buttons"]:
        z = button["args"][0]["z"][0]
        assert all(v == pytest.approx(expected[button["label"]]) for row in z for v in row), button["label"]
        assert "title.text" in button["args"][1]
    attention = menu["buttons"][3]["args"][0]
    assert attention["text"][0][0][0] == "eager<br>0.1×"
    assert attention["customdata"][0][0][0][2] == "attention.unfold"
    assert trace["zmin"] == -trace["zmax"] and trace["zmid"] == 0


def test_winners_that_change_with_the_pass_are_counted_and_the_loser_margin_given(tmp_path):
    def latency(variant, case, pass_):
        base = {"conv.depthwise": 1.0, "involution.eager": 2.0, "involution.unfold": 6.0}
        if variant == "involution.compile":
            return 1.0 if pass_ == "fwd" else 3.0
        return base[variant]

    path = write_run(tmp_path / "mixed.jsonl", variants=("involution.eager", "involution.unfold", "involution.compile",
                                                         "conv.depthwise"), sigma=0.0, n_samples=5, failures=False,
                     latency=latency)
    verdict = build_verdicts([read_results(path)])[0]
    winners = {(c.pass_, c.fastest) for c in verdict.cells}
    assert winners == {("fwd", "involution.compile"), ("fwd+bwd", "involution.eager")}
    (rec,) = verdict.recommendations
    assert (rec.variant, rec.wins, rec.cells) == ("involution.compile", 10, 20)  # a tie goes to the first name
    assert rec.margin == pytest.approx(2.0) and rec.runner_up == "involution.eager"
    assert rec.behind == pytest.approx(1.5)
    assert "compile at 10 of 20 cells, eager at 10" in verdict.bottom_line
    assert "1–2× the latency of the depthwise conv" in verdict.bottom_line
    assert verdict.ratio_range("conv.depthwise", "fwd") == (1.0, 1.0)
    assert verdict.ratio_range("conv.depthwise", "fwd+bwd") == (2.0, 2.0)


def test_ratio_phrases_say_faster_slower_or_the_latency():
    assert ratio_phrase(0.025, 0.125, "X") == "8–40× faster than X"
    assert ratio_phrase(30, 80, "X") == "30–80× slower than X"
    assert ratio_phrase(0.9, 1.2, "X") == "0.9–1.2× the latency of X"
    assert [fmt_x(v) for v in (0.123, 0.85, 1.0, 1.25, 8.34, 40.2, 151.3)] == ["0.12", "0.85", "1", "1.2", "8.3", "40", "151"]


def test_a_run_without_conv_or_attention_has_no_heatmap_but_still_a_recommendation(tmp_path):
    path = write_run(tmp_path / "inv.jsonl", variants=("involution.eager", "involution.unfold"), failures=False)
    verdict = build_verdicts([read_results(path)])[0]
    assert heatmap_figure(verdict) is None
    assert "has nothing to compare against" in verdict.bottom_line
    assert verdict.recommendations[0].variant == "involution.eager"
    page = build_report([read_results(path)])
    assert "nothing to divide by" in page


# ---- machines side by side -------------------------------------------------------------------

@pytest.fixture(scope="module")
def three_runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("machines")
    a = write_run(d / "a.jsonl", run_id="run-a", variants=ALL, seed=1, failures=False)
    b = write_run(d / "b.jsonl", run_id="run-b", hostname="box-b", cpu="Faster CPU", speed=1.5, variants=ALL, seed=2,
                  failures=False)
    c = write_run(d / "c.jsonl", run_id="run-c", variants=ALL, seed=3, failures=False,
                  cases=[case.replace(dtype="bfloat16") for case in paper_cases()])
    return [read_results(p) for p in (a, b, c)]


def test_machine_points_are_the_fastest_of_each_family_per_machine_and_dtype(three_runs):
    points = machine_points(three_runs)
    series = list(dict.fromkeys(p.series for p in points))
    assert series == ["#1 Synthetic CPU @ 2.0GHz (box-a) float32", "#2 Faster CPU (box-b) float32",
                      "#3 Synthetic CPU @ 2.0GHz (box-a) bfloat16"]
    # the same shape is one label on every machine, whatever the dtype
    labels = {p.case for p in points}
    assert len(labels) == 10 and not any("float" in label for label in labels)
    run = three_runs[1]
    for p in (p for p in points if p.run == 1 and p.pass_ == "fwd"):
        family = [r for r in run.records if r.family == p.family and r.pass_ == "fwd" and r.status == "ok"
                  and case_labels_of(run)[json.dumps(r.case, sort_keys=True)] == p.case]
        fastest = min(family, key=lambda r: np.median(r.samples_ms))
        assert p.variant == f"{fastest.family}.{fastest.variant}"
        assert p.median_ms == pytest.approx(np.median(fastest.samples_ms))
        assert p.pct_roofline == pytest.approx(100 * fastest.roofline.bound_ms / np.median(fastest.samples_ms))
    figure = machine_figure(points)
    assert figure.div_id == "fig-machines"
    assert {t["name"] for t in figure.data} == {f"{s} · {f}" for s in series for f in ("involution", "conv", "attention")}
    assert figure.layout["yaxis"]["type"] == "log" and figure.layout["yaxis3"]["type"] == "linear"  # 2 passes per row


def case_labels_of(run) -> dict:
    cases = []
    for r in run.records:
        shape = {k: v for k, v in r.case.items() if k not in ("device", "dtype")}
        if shape not in cases:
            cases.append(shape)
    labels = case_labels(cases)
    out = {}
    for r in run.records:
        shape = {k: v for k, v in r.case.items() if k not in ("device", "dtype")}
        out[json.dumps(r.case, sort_keys=True)] = labels[cases.index(shape)]
    return out


def test_one_machine_has_no_machine_view(three_runs):
    assert machine_figure(machine_points(three_runs[:1])) is None


# ---- case labels and the shape axis ----------------------------------------------------------

def test_paper_stages_are_not_a_size_ladder_and_get_case_labels():
    stages = [dict(B=1, C=c, H=h, W=h, K=7, G=c // 16, stride=s) for c, h, s in
              ((64, 56, 1), (128, 28, 1), (256, 14, 1), (128, 56, 2))]
    assert not is_size_ladder(stages) and use_case_axis(stages)
    assert case_labels(stages) == ["C64 56²", "C128 28²", "C256 14²", "C128 56²→28²"]
    batches = [dict(B=b, C=64, H=56, W=56, K=7, G=4) for b in (1, 2, 4, 8)]
    assert is_size_ladder(batches) and not use_case_axis(batches)
    widths = [dict(B=1, C=c, H=14, W=14, K=7, G=c // 16) for c in (64, 128, 256)]
    assert is_size_ladder(widths)  # G follows C at 16 channels per group


def test_latency_axis_is_case_labels_for_stages_and_elements_for_a_ladder(tmp_path):
    from invobench.registry import Case

    stages = write_run(tmp_path / "stages.jsonl", cases=paper_cases()[:4], failures=False)
    ladder = write_run(tmp_path / "ladder.jsonl", cases=[Case(B=b, C=64, H=28, W=28, K=7, G=4) for b in (1, 2, 4, 8)],
                       failures=False)
    figures = {f["id"]: f for f in payload(build_report([read_results(stages)]))["figures"]}
    layout, trace = figures["fig-latency"]["layout"], figures["fig-latency"]["data"][0]
    assert layout["xaxis"]["type"] == "category"
    assert layout["xaxis"]["categoryarray"] == ["C64 56²", "C128 28²", "C256 14²", "C512 7²"]
    assert set(trace["x"]) <= set(layout["xaxis"]["categoryarray"])
    figures = {f["id"]: f for f in payload(build_report([read_results(ladder)]))["figures"]}
    layout, trace = figures["fig-latency"]["layout"], figures["fig-latency"]["data"][0]
    assert layout["xaxis"]["type"] == "log" and sorted(trace["x"]) == [64 * 28 * 28 * b for b in (1, 2, 4, 8)]


# ---- the model section -----------------------------------------------------------------------

def test_model_section_puts_published_figures_beside_the_run(reference_models):
    page = build_report([reference_models])
    assert '<section id="models">' in page
    figure = next(f for f in payload(page)["figures"] if f["id"] == "fig-models")
    traces = {(t["name"], t["yaxis"]): t for t in figure["data"]}
    params_run = traces[("RedNet (this run)", "y")]
    rednet50 = next(r for r in reference_models.records if r.variant == "rednet50-cpu")
    assert params_run["y"][params_run["x"].index("50")] == pytest.approx(rednet50.params / 1e6)
    published = traces[("RedNet (published)", "y")]
    assert published["y"][published["x"].index("50")] == PUBLISHED["rednet50"].params_m
    assert published["marker"]["pattern"]["shape"] == "/"
    macs_published = traces[("ResNet (published)", "y2")]
    assert macs_published["y"][macs_published["x"].index("50")] == PUBLISHED["resnet50"].paper_gflops
    inference = traces[("RedNet (cpu)", "y3")]
    fwd = next(r for r in reference_models.records if r.variant == "rednet50-cpu" and r.pass_ == "fwd" and r.case["B"] == 1)
    assert inference["y"][inference["x"].index("50 B1")] == pytest.approx(np.median(fwd.samples_ms))
    assert {t["name"] for t in figure["data"]} >= {"ResNet", "RedNet (cpu)", "RedNet (eager)", "RedNet (unfold)"}


def test_no_model_records_no_model_section(known_run):
    assert '<section id="models">' not in build_report([known_run])


@pytest.fixture(scope="module")
def reference_models():
    from pathlib import Path

    return read_results(Path(__file__).resolve().parents[2] / "results" / "amd-epyc-avx512-2c" / "models.jsonl")
