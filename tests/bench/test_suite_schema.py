"""Suite schema: the shipped suites load; every bad input is an error naming file, key, value and what is valid."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from invobench.bench.cases import expand_suite, group_items, parse_shard, shard_groups
from invobench.bench.suite import SUITES_DIR, SuiteError, load_suite, parse_suite
from invobench.registry import all_variants
from invobench.results import case_id

KNOWN = [v.key for v in all_variants()]
SHIPPED = ["smoke", "paper", "cpu", "groups", "kernels", "dtypes", "gpu"]


def suite(text: str, **kw):
    return parse_suite(textwrap.dedent(text), source="t.yaml", stem="t", known_variants=KNOWN, **kw)


BASE = """
variants: [involution.eager, conv.depthwise]
defaults: {B: 1, C: 16, size: 8, K: 3, G: 2}
sweeps:
  - product: {pass: fwd}
"""


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_suites_load_and_expand(name):
    loaded = load_suite(name, KNOWN)
    items = expand_suite(loaded, KNOWN)
    assert items, f"{name} expands to nothing"
    assert len({i.case_id for i in items}) == len(items), "duplicate case ids"
    assert loaded.path == str(SUITES_DIR / f"{name}.yaml") and len(loaded.sha256) == 64


def test_paper_suite_has_the_rednet50_shapes():
    items = expand_suite(load_suite("paper", KNOWN), KNOWN)
    shapes = {(i.case.B, i.case.C, i.case.H, i.case.stride, i.case.K, i.case.G) for i in items if i.variant == "eager"}
    expected = {(b, c, h, 1, 7, c // 16) for b in (1, 32) for c, h in ((64, 56), (128, 28), (256, 14), (512, 7))}
    expected |= {(b, c, h, 2, 7, c // 16) for b in (1, 32) for c, h in ((128, 56), (256, 28), (512, 14))}
    assert shapes == expected
    compiled = [i for i in items if i.variant == "compile"]
    assert compiled and {i.pass_ for i in compiled} == {"fwd"} and {i.case.B for i in compiled} == {1}


def test_cpu_suite_runs_every_form_issue_9_compares_with_at_every_case():
    """Issue 9's target is 'faster than the best of eager / unfold / compile': each cpu record needs
    all three (and the depthwise conv, the roofline peer) in the same case and pass."""
    items = expand_suite(load_suite("cpu", KNOWN), KNOWN)
    by_case: dict = {}
    for i in items:
        by_case.setdefault((i.case.B, i.case.C, i.case.H, i.pass_), set()).add(i.variant)
    assert len(by_case) == 18
    assert all(v >= {"cpu", "eager", "unfold", "compile", "depthwise"} for v in by_case.values()), by_case


def test_zip_and_product_expand_in_order_with_stable_ids():
    loaded = suite("""
        variants: [involution.eager]
        defaults: {K: 3, G: 1, pass: fwd}
        sweeps:
          - zip: {C: [8, 16], size: [10, 20]}
            product: {B: [1, 2]}
    """)
    items = expand_suite(loaded, KNOWN)
    assert [(i.case.B, i.case.C, i.case.H, i.case.W) for i in items] == [(1, 8, 10, 10), (1, 16, 20, 20), (2, 8, 10, 10), (2, 16, 20, 20)]
    first = items[0]
    assert first.case_id == case_id("involution", "eager", "fwd", first.case.as_dict())
    again = expand_suite(suite(BASE.replace("conv.depthwise", "involution.unfold")), KNOWN)
    assert expand_suite(suite(BASE), KNOWN)[0].case_id == again[0].case_id  # ids don't depend on the other variants


def test_group_channels_sets_G_and_must_divide_C():
    items = expand_suite(suite("""
        variants: [involution.eager]
        defaults: {B: 1, size: 8, K: 3, pass: fwd, group_channels: 16}
        sweeps: [{product: {C: [32, 64]}}]
    """), KNOWN)
    assert [i.case.G for i in items] == [2, 4]
    with pytest.raises(SuiteError, match=r"C=24 is not divisible by group_channels=16"):
        expand_suite(suite("""
            variants: [involution.eager]
            defaults: {B: 1, size: 8, K: 3, pass: fwd, group_channels: 16}
            sweeps: [{product: {C: [24]}}]
        """), KNOWN)


def test_sweep_G_replaces_default_group_channels():
    items = expand_suite(suite("""
        variants: [involution.eager]
        defaults: {B: 1, C: 32, size: 8, K: 3, pass: fwd, group_channels: 16}
        sweeps: [{product: {G: [1, 32]}}]
    """), KNOWN)
    assert [i.case.G for i in items] == [1, 32]


def test_duplicates_across_sweeps_are_dropped():
    items = expand_suite(suite(BASE + "  - product: {pass: fwd}\n"), KNOWN)
    assert len(items) == 2


def test_cli_overrides_replace_variants_device_and_dtype():
    loaded = suite(BASE)
    items = expand_suite(loaded, KNOWN, variants=["conv.*"], device="cuda", dtypes=["float16", "bfloat16"])
    assert {i.key for i in items} == {"conv.dense", "conv.grouped", "conv.depthwise"}
    assert {i.case.device for i in items} == {"cuda"} and {i.case.dtype for i in items} == {"float16", "bfloat16"}
    with pytest.raises(SuiteError, match=r"--variants\[0\]: unknown variant 'conv.dens'. Did you mean 'conv.dense'\?"):
        expand_suite(loaded, KNOWN, variants=["conv.dens"])


@pytest.mark.parametrize("text, message", [
    ("budgte: {}\nsweeps: [{}]\n", r"t.yaml: budgte: unknown key 'budgte'. Did you mean 'budget'\? Valid keys here: name, "),
    (BASE.replace("product:", "produkt:"), r"t.yaml: sweeps\[0\].produkt: unknown key 'produkt'. Did you mean 'product'\?"),
    (BASE.replace("variants: [", "budget: {case_sec: 1}\nvariants: ["), r"budget.case_sec: unknown key 'case_sec'. Did you mean 'case_s'\?"),
    (BASE.replace("K: 3", "KK: 3"), r"t.yaml: defaults.KK: unknown axis 'KK'. Did you mean 'K'\? Valid axes: B, C, H, W, size, K,"),
    (BASE.replace("involution.eager", "involution.eagr"),
     r"t.yaml: variants\[0\]: unknown variant 'involution.eagr'. Did you mean 'involution.eager'\? Known: involution.eager"),
    (BASE.replace("involution.eager", "nothing.*"), r"variants\[0\]: pattern 'nothing.\*' matches no variant"),
    (BASE.replace("pass: fwd", "pass: [fwd, bwdd]"),
     r"sweeps\[0\].product.pass\[1\]: 'bwdd' is not a valid pass. Did you mean 'bwd'\? Valid values: fwd, bwd, fwd\+bwd, train"),
    (BASE.replace("pass: fwd", "dtype: fp32"), r"sweeps\[0\].product.dtype: 'fp32' is not a valid dtype.* Valid values: float64, float32, bfloat16, float16"),
    (BASE.replace("pass: fwd", "device: tpu"), r"'tpu' is not a valid device\..* Valid values: cpu, cuda"),
    (BASE.replace("K: 3", "K: 4"), r"defaults.K: K=4 is even;.*K must be odd"),
    (BASE.replace("B: 1", "B: 0"), r"defaults.B: 0 is invalid; B must be >= 1"),
    (BASE.replace("B: 1", "B: one"), r"defaults.B: 'one' is not an integer"),
    (BASE.replace("B: 1", "B: []"), r"defaults.B: empty list"),
    (BASE.replace("budget", "x").replace("variants: [", "budget: {rel_iqr: -0.1}\nvariants: ["),
     r"budget.rel_iqr: invalid value -0.1: Input should be greater than 0"),
    (BASE.replace("product: {pass: fwd}", "zip: {C: [8, 16], size: [4]}"), r"sweeps\[0\].zip: zipped lists must have equal lengths; got C=2, size=1"),
    (BASE.replace("G: 2", "G: 2, group_channels: 4"), r"defaults: G is given in two forms \(G, group_channels\)"),
    (BASE.replace("B: 1, ", ""), r"sweeps\[0\]: missing axis B"),
    (BASE.replace("size: 8", "H: 8"), r"sweeps\[0\]: missing axis size \(or H and W\)"),
    ("variants: [involution.eager]\nsweeps: []\n", r"sweeps: invalid value \[\]"),
    ("sweeps: [{product: {B: 1}}]\n", r"sweeps\[0\]: no variants to run"),
    ("- just\n- a list\n", r"t.yaml: a suite must be a YAML mapping"),
    ("variants: [a\nsweeps: {\n", r"t.yaml:\d+:\d+: not valid YAML"),
])
def test_bad_suites_name_the_file_key_and_valid_values(text, message):
    with pytest.raises(SuiteError, match=message):
        suite(text)


def test_unknown_suite_name_suggests_the_closest(tmp_path):
    with pytest.raises(SuiteError, match=r"unknown suite 'smok'. Did you mean 'smoke'\?"):
        load_suite("smok", KNOWN)
    with pytest.raises(SuiteError, match=r"does not exist"):
        load_suite(str(tmp_path / "missing.yaml"), KNOWN)


def test_suite_by_path_and_hash_of_its_bytes(tmp_path):
    p = tmp_path / "mine.yaml"
    p.write_text(BASE)
    a = load_suite(str(p), KNOWN)
    p.write_text(BASE + "\n# a comment changes the hash\n")
    b = load_suite(str(p), KNOWN)
    assert a.name == "mine" and a.sha256 != b.sha256


def test_shards_partition_the_groups_deterministically():
    loaded = load_suite("paper", KNOWN)
    groups = group_items(expand_suite(loaded, KNOWN))
    parts = [shard_groups(groups, k, 3) for k in (1, 2, 3)]
    ids = [[g.group_id for g in p] for p in parts]
    assert sorted(sum(ids, [])) == sorted(g.group_id for g in groups)
    assert max(map(len, ids)) - min(map(len, ids)) <= 1
    assert ids[0] == [g.group_id for g in shard_groups(groups, 1, 3)]
    # every group holds all variants of one (case, pass)
    for g in groups:
        assert {(i.case, i.pass_) for i in g.items} == {(g.case, g.pass_)}


@pytest.mark.parametrize("text, message", [("2", "not of the form k/n"), ("0/2", "need 1 <= k <= n"), ("3/2", "need 1 <= k <= n"),
                                           ("a/b", "not of the form")])
def test_bad_shard_specs(text, message):
    with pytest.raises(ValueError, match=message):
        parse_shard(text)


def test_every_shipped_suite_file_is_in_the_suites_dir():
    assert {p.stem for p in Path(SUITES_DIR).glob("*.yaml")} >= set(SHIPPED)


def test_exclude_variants_takes_names_out_of_the_inherited_list_only():
    loaded = suite("""
        variants: [involution.*]
        exclude_variants: [involution.compile]
        defaults: {B: 1, C: 16, size: 8, K: 3, G: 2, pass: fwd}
        sweeps:
          - name: all but compile
          - name: only compile
            variants: [involution.compile]
          - name: fewer
            exclude_variants: [involution.unfold]
            product: {B: 2}
    """)
    items = expand_suite(loaded, KNOWN)
    by_sweep = {}
    for i in items:
        by_sweep.setdefault(i.sweep, set()).add(i.key)
    assert "involution.compile" not in by_sweep["all but compile"] and "involution.eager" in by_sweep["all but compile"]
    assert by_sweep["only compile"] == {"involution.compile"}
    assert by_sweep["fewer"] == by_sweep["all but compile"] - {"involution.unfold"}
    with pytest.raises(SuiteError, match=r"exclude_variants\[0\]: unknown variant 'involution.compil'"):
        suite(BASE.replace("variants: [", "exclude_variants: [involution.compil]\nvariants: ["))


def test_suite_name_falls_back_to_the_working_directory(tmp_path, monkeypatch):
    import invobench.bench.suite as suite_module

    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "mine.yaml").write_text(BASE)
    monkeypatch.setattr(suite_module, "SUITES_DIR", tmp_path / "nowhere")
    monkeypatch.chdir(tmp_path)
    assert load_suite("mine", KNOWN).name == "mine"
    with pytest.raises(SuiteError, match=r"unknown suite 'mien'. Did you mean 'mine'\?"):
        load_suite("mien", KNOWN)


def test_a_key_given_twice_is_refused_not_silently_overwritten():
    text = BASE.replace("defaults: {B: 1,", "budget: {case_s: 1.0}\nbudget: {case_s: 9.0}\ndefaults: {B: 1,")
    with pytest.raises(SuiteError, match=r"t\.yaml:\d+:\d+: not valid YAML: key 'budget' appears twice in one mapping"):
        suite(text)
    with pytest.raises(SuiteError, match="key 'B' appears twice"):
        suite(BASE.replace("{B: 1, C: 16,", "{B: 1, C: 16, B: 2,"))


def test_min_samples_above_max_samples_is_refused():
    with pytest.raises(SuiteError, match="min_samples=50 is greater than max_samples=10"):
        suite(BASE + "budget: {min_samples: 50, max_samples: 10}\n")


def test_a_budget_of_nan_or_infinity_is_refused():
    for value in (".nan", ".inf"):
        with pytest.raises(SuiteError, match=r"budget\.case_s: invalid value"):
            suite(BASE + f"budget: {{case_s: {value}}}\n")
