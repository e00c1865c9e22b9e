"""Bad input a user can type ends in a message that names the field, the value and the fix — never a traceback,
never a silently wrong result."""
from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from invobench.cli import cli
from invobench.nn import Involution2d, LocalSelfAttention2d
from synthetic_results import write_run
from tiny_suite import TINY



def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def _clean_failure(result, *phrases: str) -> None:
    """Exit code 1 or 2 (a usage or a run error), the phrases in the output, and no traceback."""
    assert result.exit_code in (1, 2), (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    for phrase in phrases:
        assert phrase in result.output, result.output


def test_a_suite_path_that_is_a_directory_is_named(tmp_path):
    _clean_failure(invoke("run", str(tmp_path), "--dry-run"), "is a directory; give a suite file")


def test_a_suite_that_is_not_utf8_is_named_with_its_line(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(TINY.encode() + "# caf\xe9\n".encode("latin-1"))
    _clean_failure(invoke("run", str(path), "--dry-run"), "latin1.yaml:9: not UTF-8 text (byte 0xe9")


def test_a_plugin_module_that_does_not_exist_is_named_with_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("INVOBENCH_PLUGINS", "no_such_plugin_module")
    (tmp_path / "tiny.yaml").write_text(TINY)
    _clean_failure(invoke("run", str(tmp_path / "tiny.yaml"), "--dry-run"),
                   "INVOBENCH_PLUGINS names 'no_such_plugin_module', which cannot be imported")


def test_a_plugin_file_that_raises_is_named_with_the_variable(tmp_path, monkeypatch):
    plugin = tmp_path / "broken_plugin.py"
    plugin.write_text("raise RuntimeError('broken on purpose')\n")
    monkeypatch.setenv("INVOBENCH_PLUGINS", str(plugin))
    (tmp_path / "tiny.yaml").write_text(TINY)
    _clean_failure(invoke("run", str(tmp_path / "tiny.yaml"), "--dry-run"),
                   f"INVOBENCH_PLUGINS names '{plugin}', whose code failed while loading: RuntimeError: broken on purpose")


def test_count_refuses_a_layer_whose_reduction_exceeds_its_channels():
    _clean_failure(invoke("count", "--C", "16", "--reduction", "64", "--level", "layer", "--no-measure"),
                   "--reduction 64 exceeds --C 16")


def test_count_refuses_an_unknown_family():
    _clean_failure(invoke("count", "--family", "nonsense", "--no-measure"),
                   "'nonsense' is not a family; choose from involution, conv, attention")


def test_variants_that_name_nothing_are_a_usage_error_not_the_suites_list(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY)
    _clean_failure(invoke("run", str(tmp_path / "tiny.yaml"), "--variants", ",", "--dry-run"), "names nothing")


@pytest.mark.parametrize("option, value", [("--threshold", "nan"), ("--threshold", "-0.1"), ("--threshold", "inf"),
                                           ("--alpha", "nan"), ("--alpha", "1.5")])
def test_compare_refuses_a_threshold_or_alpha_that_is_not_finite_and_in_range(tmp_path, option, value):
    a, b = write_run(tmp_path / "a.jsonl", seed=1), write_run(tmp_path / "b.jsonl", seed=2)
    result = invoke("compare", str(a), str(b), option, value, "--fail-on-regression")
    _clean_failure(result, f"{option.lstrip('-')}={float(value)}")
    assert result.exit_code == 2


def test_show_warns_about_repeated_case_ids(tmp_path):
    path = write_run(tmp_path / "a.jsonl", seed=1)
    text = path.read_text()
    path.write_text(text + text.splitlines()[-1] + "\n")
    result = CliRunner().invoke(cli, ["show", str(path)])
    assert result.exit_code == 0 and "appear more than once" in result.stderr


def test_dry_run_marks_what_the_memory_guard_will_skip(tmp_path):
    suite = TINY.replace("sweeps:", "sweeps:\n  - {variants: [involution.unfold], product: {C: 64, size: 160, K: 11, pass: fwd}}")
    (tmp_path / "s.yaml").write_text(suite)
    result = invoke("run", str(tmp_path / "s.yaml"), "--dry-run", "--mem-budget", "1GiB")
    assert result.exit_code == 0, result.output
    unfold = [line for line in result.output.splitlines() if "involution.unfold" in line]
    assert len(unfold) == 1 and "skip: memory guard: estimated peak" in unfold[0]
    assert all(line.rstrip().endswith("run") for line in result.output.splitlines() if "conv.depthwise" in line)


def test_a_plain_number_as_memory_budget_is_refused_with_both_readings(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY)
    _clean_failure(invoke("run", str(tmp_path / "tiny.yaml"), "--dry-run", "--mem-budget", "2"),
                   "'2' has no unit: write 2B for bytes, or 2GiB")


def test_a_suite_name_that_is_a_path_is_refused(tmp_path):
    (tmp_path / "s.yaml").write_text(TINY.replace("name: tiny", "name: ../../escape"))
    _clean_failure(invoke("run", str(tmp_path / "s.yaml"), "--dry-run"), "name: invalid value '../../escape'",
                   "is not a plain name")


def test_the_default_output_of_any_name_stays_inside_out():
    from invobench.bench.output import default_out

    for name in ("../../x", "/etc/passwd", "a/b"):
        path = default_out(name)
        assert path.parent.name == "out" and ".." not in path.parts and path.name.endswith(".jsonl")


def test_layers_refuse_an_unknown_variant_when_built_not_at_the_first_forward():
    with pytest.raises(ValueError, match="unknown involution variant 'nope'.*Known: .*eager"):
        Involution2d(16, variant="nope")
    with pytest.raises(ValueError, match="unknown attention variant 'nope'"):
        LocalSelfAttention2d(16, heads=2, variant="nope")
    assert Involution2d(16, variant="eager")(torch.randn(1, 16, 5, 5)).shape == (1, 16, 5, 5)


def test_a_json_line_that_is_not_a_results_line_is_named_by_show(tmp_path):
    path = write_run(tmp_path / "a.jsonl", seed=1)
    path.write_text(path.read_text() + json.dumps({"hello": "world"}) + "\n")
    _clean_failure(invoke("show", str(path)), 'not a results line: no "type" field')
    assert "validation errors" not in invoke("show", str(path)).output
