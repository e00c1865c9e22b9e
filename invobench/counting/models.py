"""The published-vs-measured table of `invobench models`: each network's parameters and counts, analytic,
measured (FlopCounterMode, fvcore, the published tables' convention) and published."""
from __future__ import annotations

import warnings

import torch

from invobench.core import Workload
from invobench.counting.measured import fvcore_macs
from invobench.models import build_model, get_model_spec
from invobench.models.complexity import PUBLISHED, PUBLISHED_IMAGE_SIZE, bottleneck_net_counts, measure_shape_counts


def model_row(name: str, size: int = PUBLISHED_IMAGE_SIZE, fvcore: bool = True, stem_kernel_size: int = 3) -> dict:
    """Measured params / MACs / FLOPs of model `name` at size×size beside the analytic and published figures."""
    spec = get_model_spec(name)
    kwargs = {"stem_kernel_size": stem_kernel_size} if spec.involution else {}
    # the apply's count is the custom op's formula whatever the implementation; eager needs no build step
    model = build_model(name, "eager" if spec.involution else None, **kwargs).eval()
    analytic = bottleneck_net_counts(spec.depth, spec.involution, size, size, stem_kernel_size=stem_kernel_size)
    shape_counts = measure_shape_counts(model, size, size)
    params = sum(p.numel() for p in model.parameters())
    row: dict = {
        "model": name, "stem_kernel_size": stem_kernel_size if spec.involution else None, "image": size,
        "params": params, "params_analytic": analytic.params, "macs_analytic": analytic.macs,
        "paper_flops_analytic": analytic.paper_ops,
        "flop_counter_flops": shape_counts.flop_counter_flops, "paper_flops": shape_counts.paper_flops,
        "fvcore_macs": None, "fvcore_reason": "not measured (--no-fvcore)" if not fvcore else "",
    }
    if fvcore:
        image = torch.zeros(1, 3, size, size)

        def forward() -> torch.Tensor:
            with torch.no_grad():
                return model(image)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            measured = fvcore_macs(Workload(forward, [image], module=model))
        row["fvcore_macs"], row["fvcore_reason"] = measured.value, measured.reason
    published = PUBLISHED.get(name) if size == PUBLISHED_IMAGE_SIZE else None
    row.update(published_params_m=None, published_params_exact=None, published_paper_gflops=None,
               published_fvcore_gmacs=None, source=None, params_delta_m=None, paper_gflops_delta=None,
               fvcore_vs_published_pct=None, fvcore_vs_published_fvcore_pct=None)
    if published is not None:
        row.update(published_params_m=published.params_m, published_params_exact=published.params_exact,
                   published_paper_gflops=published.paper_gflops, published_fvcore_gmacs=published.fvcore_gmacs,
                   source=published.source)
        if published.params_exact is not None:
            row["params_delta_m"] = (params - published.params_exact) / 1e6
        elif published.params_m is not None:
            row["params_delta_m"] = round(params / 1e6 - published.params_m, 6)
        if published.paper_gflops is not None:
            row["paper_gflops_delta"] = round(shape_counts.paper_flops / 1e9 - published.paper_gflops, 6)
        if row["fvcore_macs"] is not None and published.paper_gflops is not None:
            row["fvcore_vs_published_pct"] = round(100 * (row["fvcore_macs"] / 1e9 / published.paper_gflops - 1), 3)
        if row["fvcore_macs"] is not None and published.fvcore_gmacs is not None:
            row["fvcore_vs_published_fvcore_pct"] = round(100 * (row["fvcore_macs"] / 1e9 / published.fvcore_gmacs - 1), 3)
    return row
