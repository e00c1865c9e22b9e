"""RedNet / ResNet models: published parameters and FLOPs, counters, shapes, training, bad input.

Published figures (sources in invobench.models.complexity.PUBLISHED, tolerances in docs/models.md):
params and FLOPs at 224×224 are checked through the analytic counts, which are themselves checked
exactly against the measured model (parameters, FlopCounterMode, fvcore, the mmcv-convention hooks)
at an odd small image (33×33: every stride hits an odd size) and, for ResNet-50/RedNet-50, at 224.
"""
from __future__ import annotations

import warnings

import pytest
import torch

import invobench.models  # noqa: F401  (registers the model family)
from invobench.counting import flop_counter_flops, fvcore_macs
from invobench.models import MODELS, build_model
from invobench.models.complexity import (
    FVCORE_REL_TOLERANCE, PAPER_GFLOPS_ROUNDING, PARAMS_TOLERANCE_M, PUBLISHED, bottleneck_net_counts,
    measure_shape_counts, stem_kernel_difference,
)
from invobench.counting import model_counts
from invobench.models.memory import estimate_peak_bytes
from invobench.registry import Case, Workload, all_variants, get

REDNETS = [n for n, s in MODELS.items() if s.involution]
RESNETS = [n for n, s in MODELS.items() if not s.involution]
SMALL = 33  # the smallest odd size the strides allow (32 is the minimum)


@pytest.fixture(autouse=True)
def _one_thread():
    """These tests check values, not speed: one thread avoids OpenMP's barrier cost on a busy shared CPU
    (a 33×33 RedNet-26 forward took 4 s with 2 threads beside other jobs, 0.15 s with 1)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _analytic(name: str, size: int = 224, **kw):
    spec = MODELS[name]
    return bottleneck_net_counts(spec.depth, spec.involution, size, size, **kw)


def _inference(model: torch.nn.Module, size: int) -> Workload:
    model.eval()
    image = torch.randn(1, 3, size, size)

    def forward() -> torch.Tensor:
        with torch.no_grad():
            return model(image)

    return Workload(forward, [image], module=model)


# ---- parameters -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name,expected", [("resnet50", 25_557_032), ("resnet101", 44_549_160), ("resnet152", 60_192_808)])
def test_resnet_params_equal_torchvision(name, expected):
    assert _params(build_model(name)) == expected


@pytest.mark.parametrize("name", list(MODELS))
def test_params_equal_analytic_formula(name):
    model = build_model(name, "eager" if MODELS[name].involution else None)
    assert _params(model) == _analytic(name).params, f"{name}: built {_params(model)} != analytic"


@pytest.mark.parametrize("name", REDNETS)
def test_rednet_params_match_published(name):
    published = PUBLISHED[name].params_m
    spec_model = _analytic(name).params / 1e6
    assert abs(spec_model - published) <= PARAMS_TOLERANCE_M, (
        f"{name}: {spec_model:.4f} M vs published {published} M (tolerance {PARAMS_TOLERANCE_M} M)")
    # the 7×7-stem configuration rounds to every published figure exactly
    assert round(_analytic(name, stem_kernel_size=7).params / 1e6, 2) == published


def test_stem_kernel_7_model_matches_its_formula():
    model = build_model("rednet26", "eager", stem_kernel_size=7)
    assert _params(model) == _analytic("rednet26", stem_kernel_size=7).params
    assert measure_shape_counts(model, SMALL, fake=False).paper_flops == _analytic(
        "rednet26", SMALL, stem_kernel_size=7).paper_ops


# ---- FLOPs: the counters agree with the formulas ---------------------------------------------------

@pytest.mark.parametrize("name", ["resnet26", "resnet38", "resnet50", "rednet26", "rednet38", "rednet50"])
def test_counters_equal_analytic_at_small_odd_image(name):
    """FlopCounterMode = 2·MACs, fvcore = MACs, the mmcv-convention hooks = paper_ops, exactly (real tensors).

    101 and 152 only repeat stage-3/stage-2 blocks (their parameters are checked above and their
    FlopCounterMode/mmcv counts at 224 below), so the traced forwards stop at depth 50 to keep this fast.
    """
    model = build_model(name, "eager" if MODELS[name].involution else None)
    analytic = _analytic(name, SMALL)
    measured = measure_shape_counts(model, SMALL, fake=False)
    assert measured.flop_counter_flops == 2 * analytic.macs
    assert measured.paper_flops == analytic.paper_ops
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fv = fvcore_macs(_inference(model, SMALL))
    assert fv.value == analytic.macs, fv.reason


@pytest.mark.parametrize("name", ["resnet50", "rednet50"])
def test_counters_at_224_match_published(name):
    """One real traced forward for fvcore at the published size; FlopCounterMode and the mmcv hooks on FakeTensors."""
    model = build_model(name, "eager" if MODELS[name].involution else None)
    analytic = _analytic(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fv = fvcore_macs(_inference(model, 224))
    shape_counts = measure_shape_counts(model, 224)
    assert fv.value == analytic.macs and shape_counts.flop_counter_flops == 2 * analytic.macs
    published = PUBLISHED[name]
    assert abs(fv.value / 1e9 - published.paper_gflops) / published.paper_gflops <= FVCORE_REL_TOLERANCE
    if published.fvcore_gmacs is not None:
        assert round(fv.value / 1e9, 3) == published.fvcore_gmacs
    assert shape_counts.paper_flops == analytic.paper_ops


@pytest.mark.parametrize("name", ["resnet50", "resnet101", "resnet152"])
def test_resnet_flops_match_torchvision_and_mmcls(name):
    counts, published = _analytic(name), PUBLISHED[name]
    assert round(counts.macs / 1e9, 3) == published.fvcore_gmacs  # torchvision's `_ops`
    assert abs(counts.paper_ops / 1e9 - published.paper_gflops) <= PAPER_GFLOPS_ROUNDING  # mmcls's table


@pytest.mark.parametrize("name", REDNETS)
def test_rednet_flops_match_published(name):
    published = PUBLISHED[name].paper_gflops
    k3, k7 = _analytic(name), _analytic(name, stem_kernel_size=7)
    # the stem kernel explains the whole difference between the two configurations
    assert (k7.params - k3.params, k7.paper_ops - k3.paper_ops) == stem_kernel_difference()
    assert abs(k7.paper_ops / 1e9 - published) <= PAPER_GFLOPS_ROUNDING, f"{name}: {k7.paper_ops / 1e9:.4f} vs {published}"
    stem = stem_kernel_difference()[1] / 1e9
    assert abs(k3.paper_ops / 1e9 - published) <= PAPER_GFLOPS_ROUNDING + stem
    # spec MACs (fvcore/FlopCounterMode convention) differ from mmcv's by BN/ReLU/pooling and the head only
    assert abs(k3.macs / 1e9 - published) / published <= FVCORE_REL_TOLERANCE


def test_flop_counter_on_fake_tensors_at_224_for_the_deepest_models():
    for name in ("resnet152", "rednet152"):
        model = build_model(name, "eager" if MODELS[name].involution else None)
        counts = measure_shape_counts(model, 224)
        analytic = _analytic(name)
        assert (counts.flop_counter_flops, counts.paper_flops) == (2 * analytic.macs, analytic.paper_ops)


def test_backward_macs_formula_matches_flop_counter():
    case = Case(B=2, C=3, H=SMALL, W=SMALL, level="model")
    workload = get("model.rednet26-eager").build(case, True)
    measured = flop_counter_flops(workload, backward=True)
    assert measured.value == 2 * model_counts("rednet26-eager", case).macs_bwd


# ---- forward, training, registry ------------------------------------------------------------------

@pytest.mark.parametrize("key", ["model.resnet26", "model.rednet26-eager", "model.rednet26-unfold"])
def test_inference_workload_output_shape_and_mode(key):
    case = Case(B=2, C=3, H=64, W=48, level="model")
    workload = get(key).build(case, False)
    out = workload.fn()
    assert out.shape == (2, 1000) and out.grad_fn is None and torch.isfinite(out).all()
    assert not workload.module.training


@pytest.mark.parametrize("key", ["model.resnet26", "model.rednet26-eager"])
def test_train_steps_reach_and_update_the_weights(key):
    """Backward reaches every parameter; two SGD steps change every conv/linear weight.

    (The first step moves the zero-initialised last BN scale of each block, which blocks the gradient
    of the branch behind it until then; BN scales near 1.0 may not move visibly in float32.)
    """
    case = Case(B=2, C=3, H=SMALL, W=SMALL, level="model")
    workload = get(key).build(case, True)
    model = workload.module
    assert model.training
    weights = {n: p for n, p in model.named_parameters()
               if isinstance(model.get_submodule(n.rsplit(".", 1)[0]), (torch.nn.Conv2d, torch.nn.Linear))}
    before = {n: p.detach().clone() for n, p in weights.items()}
    workload.train_step()
    assert all(p.grad is not None for p in model.parameters()), "backward did not reach every parameter"
    workload.train_step()
    unchanged = [n for n, p in weights.items() if torch.equal(before[n], p)]
    assert not unchanged, f"{len(unchanged)} of {len(weights)} conv/linear weights unchanged by two SGD steps: {unchanged[:3]}"
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_rednet_variants_agree():
    """The same weights give the same logits with each involution implementation (float64, vs eager)."""
    torch.manual_seed(0)
    reference = build_model("rednet26", "eager").double().eval()
    image = torch.randn(1, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        expected = reference(image)
    for name in ("unfold",):
        other = build_model("rednet26", name).double().eval()
        other.load_state_dict(reference.state_dict())
        with torch.no_grad():
            got = other(image)
        err = (got - expected).abs().max().item()
        assert err <= 1e-9 * expected.abs().max().item(), f"{name}: max abs error {err:.3e}"


def test_registry_has_one_variant_per_model_and_involution_implementation():
    keys = {v.key for v in all_variants("model")}
    involution = [v.name for v in all_variants("involution")]
    for name in RESNETS:
        assert f"model.{name}" in keys
    for name in REDNETS:
        for impl in involution:
            assert f"model.{name}-{impl}" in keys
    assert all(v.levels == ("model",) for v in all_variants("model"))


def test_memory_estimate_is_ordered():
    case = Case(B=8, C=3, H=224, W=224, level="model")
    fwd, train = (estimate_peak_bytes("rednet50-unfold", case, p) for p in ("fwd", "train"))
    assert 0 < fwd < train
    assert estimate_peak_bytes("rednet50-unfold", case, "fwd") > estimate_peak_bytes("rednet50-eager", case, "fwd")
    assert estimate_peak_bytes("resnet50", case.replace(B=16), "train") > estimate_peak_bytes("resnet50", case, "train")


# ---- bad input ------------------------------------------------------------------------------------

def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ValueError) as info:
        build_model("rednet51")
    message = str(info.value)
    assert "rednet51" in message and "Did you mean 'rednet50'" in message
    assert all(name in message for name in MODELS)


def test_image_too_small_for_the_strides():
    model = build_model("resnet26").eval()
    with pytest.raises(ValueError, match=r"H=16, W=64 is too small.*downsamples by 32"):
        with torch.no_grad():
            model(torch.randn(1, 3, 16, 64))
    reasons = get("model.rednet26-eager").why_not(Case(B=1, C=3, H=31, W=224, level="model"))
    assert any("too small" in r and "H=31" in r for r in reasons), reasons
    with pytest.raises(ValueError, match="too small"):
        get("model.resnet26").build(Case(B=1, C=3, H=8, W=8, level="model"), False)


def test_wrong_image_channels():
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        build_model("resnet26")(torch.randn(1, 1, 64, 64))


def test_training_batch_one_with_a_1x1_last_map_is_refused_clearly():
    with pytest.raises(ValueError, match="BatchNorm has one value per channel"):
        get("model.resnet26").build(Case(B=1, C=3, H=32, W=32, level="model"), True)


def test_unavailable_involution_variant_gives_its_reasons():
    cuda = get("involution.cuda")
    reasons = cuda.unavailable_reasons()
    if not reasons:
        pytest.skip("involution.cuda can run on this machine")
    with pytest.raises(ValueError, match="cannot build rednet50 with involution variant 'cuda'") as info:
        build_model("rednet50", "cuda")
    assert all(r in str(info.value) for r in reasons)
    model_variant = get("model.rednet50-cuda")
    on_cuda = model_variant.why_not(Case(B=1, C=3, H=224, W=224, level="model", device="cuda"))
    assert all(any(r in m for m in on_cuda) for r in reasons), (reasons, on_cuda)
    on_cpu = model_variant.why_not(Case(B=1, C=3, H=224, W=224, level="model", device="cpu"))
    assert any("device 'cpu' not supported" in m for m in on_cpu), on_cpu


def test_unknown_involution_variant_and_variant_on_a_resnet():
    with pytest.raises(ValueError, match="unknown involution variant 'eagre'.*Known"):
        build_model("rednet26", "eagre")
    with pytest.raises(ValueError, match="resnet50 has no involution layers"):
        build_model("resnet50", "eager")


# ---- breakdown -------------------------------------------------------------------------------------

def test_breakdown_attributes_time_to_every_layer_kind():
    from invobench.models.breakdown import CATEGORIES, profile_model

    inference, train = profile_model("rednet26", "eager", batch=2, size=SMALL, warmup=1)
    for b in (inference, train):
        assert set(b.category_ms) == set(CATEGORIES)
        assert abs(sum(b.category_ms.values()) - b.profiled_ms) < 1e-6
        for category in ("involution apply", "kernel generation", "convolution", "normalisation"):
            assert b.category_ms[category] > 0, (b.step, category, b.category_ms)
    # the training step's apply includes its backward op, charged through the autograd sequence numbers
    assert train.category_ms["involution apply"] > inference.category_ms["involution apply"]
    (resnet_inference,) = profile_model("resnet26", batch=1, size=SMALL, train=False)
    assert resnet_inference.category_ms["involution apply"] == 0 == resnet_inference.category_ms["kernel generation"]


# ---- the command line -------------------------------------------------------------------------------

def test_models_command_json_and_errors():
    import json

    from click.testing import CliRunner

    from invobench.commands.models import command

    runner = CliRunner()
    result = runner.invoke(command, ["--models", "rednet26", "--no-fvcore", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    (row,) = data["models"]
    assert row["params"] == 9_233_166 and row["published_params_m"] == 9.23
    assert row["flop_counter_flops"] == 2 * row["macs_analytic"] and row["paper_flops"] == row["paper_flops_analytic"]
    assert data["rednet_stem_k7"][0]["params"] == 9_233_886
    bad = runner.invoke(command, ["--breakdown", "rednet51"])
    assert bad.exit_code != 0 and "Did you mean 'rednet50'" in bad.output
    bad = runner.invoke(command, ["--models", "resnet50", "--size", "16", "--no-fvcore"])
    assert bad.exit_code != 0 and "too small" in bad.output
