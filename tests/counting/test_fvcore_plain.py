"""Plain fvcore use: after `enable_fvcore()`, `FlopCountAnalysis(model, x)` counts the involution apply without
any handle passed by hand, exactly as with `set_op_handle(**fvcore_handles())`."""
from __future__ import annotations

import warnings

import pytest
import torch

fvcore_flop_count = pytest.importorskip("fvcore.nn.flop_count")

from fvcore.nn import FlopCountAnalysis  # noqa: E402

from invobench.counting import enable_fvcore, fvcore_handles, model_counts  # noqa: E402
from invobench.models import build_model  # noqa: E402
from invobench.registry import Case  # noqa: E402


@pytest.fixture
def fvcore_defaults(monkeypatch):
    """fvcore's table of default handles, restored after the test (enable_fvcore changes it for the process)."""
    table = dict(fvcore_flop_count._DEFAULT_SUPPORTED_OPS)
    monkeypatch.setattr(fvcore_flop_count, "_DEFAULT_SUPPORTED_OPS", table)
    return table


def _total(model: torch.nn.Module, image: torch.Tensor, **handles) -> int:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        analysis = FlopCountAnalysis(model, image)
        if handles:
            analysis.set_op_handle(**handles)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return int(analysis.total())


def test_plain_flop_count_analysis_of_rednet50_counts_the_involution_apply_once_enabled(fvcore_defaults):
    model = build_model("rednet50", "eager").eval()
    image = torch.zeros(1, 3, 224, 224)
    blind = _total(model, image)  # what plain fvcore sees before: every apply counted 0
    with_handles = _total(model, image, **fvcore_handles())
    covered = enable_fvcore()
    plain = _total(model, image)
    assert "invobench::involution_eager" in covered and "invobench::involution_cpu" in covered
    assert all(name in fvcore_defaults for name in covered)
    assert plain == with_handles
    # the difference is exactly the apply of RedNet-50's involution layers: the spec's count of it
    spec = model_counts("rednet50-eager", Case(B=1, C=3, H=224, W=224, level="model"))
    rednet_apply = with_handles - blind
    assert rednet_apply > 0 and with_handles != blind
    assert plain - blind == rednet_apply
    assert spec.macs_fwd > rednet_apply  # the apply is a part of the network's MACs, not all of it


def test_enable_fvcore_is_idempotent_and_adds_only_forward_ops(fvcore_defaults):
    before = set(fvcore_defaults)
    first = enable_fvcore()
    second = enable_fvcore()
    assert first == second
    assert set(fvcore_defaults) - before == set(first)
    assert not any(name.endswith("_backward") for name in first)  # fvcore traces forward only
