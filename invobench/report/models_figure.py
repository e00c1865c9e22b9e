"""The report's model section: RedNet against the ResNet of the same depth, as grouped bars.

Rows: parameters, MACs per image (the published tables' convention), inference latency (the `fwd`
pass), training-step latency (`train`) and peak memory; one column per results file with model
records. The published figures (`invobench.models.complexity.PUBLISHED`, quoted at 224×224) stand
hatched beside the run's own: parameters as the record counts them, MACs in the convention the
published "FLOPs" were made with (mmcv's hooks plus the involution apply, `bottleneck_net_counts(...).paper_ops`;
the spec's MACs, fvcore's convention, are in the hover). Latencies are the medians of the samples.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Optional, Sequence

from invobench.models import MODELS, split_variant_name
from invobench.models.complexity import PUBLISHED, PUBLISHED_IMAGE_SIZE, bottleneck_net_counts
from invobench.report.escape import esc
from invobench.report.figures import PALETTE, Figure, facet_layout, _axis_names
from invobench.report.rows import Row

RESNET_COLOR = "#6b7280"
ROWS = (("params", "parameters, M"), ("macs", "GMACs per image"), ("fwd", "inference, ms"),
        ("train", "training step, ms"), ("memory", "peak memory, MiB"))


def _kind(row: Row) -> tuple[str, int, Optional[str]]:
    """('resnet' | 'rednet', depth, involution variant) of a model record."""
    model, involution = split_variant_name(row.record.variant)
    spec = MODELS[model]
    return ("rednet" if spec.involution else "resnet"), spec.depth, involution


def _label(kind: str, involution: Optional[str]) -> str:
    return f"RedNet ({involution})" if kind == "rednet" and involution else ("RedNet" if kind == "rednet" else "ResNet")


def model_figure(rows: Sequence[Row], n_runs: int, titles: Sequence[str]) -> Optional[Figure]:
    """Grouped bars of every RedNet and ResNet record (module docstring); None without model records."""
    models = []
    for r in rows:
        if r.record.family != "model" or not r.ok:
            continue
        try:
            models.append((r, *_kind(r)))
        except (KeyError, ValueError):  # a model this version does not know: leave it to the records table
            continue
    if not models:
        return None
    runs = sorted({r.run for r, *_ in models})
    n_cols = len(runs)
    kinds = sorted({_label(k, inv) for _, k, _, inv in models}, key=lambda s: (s != "ResNet", s))
    colors = {label: RESNET_COLOR if label == "ResNet" else PALETTE[i % len(PALETTE)] for i, label in enumerate(kinds)}
    depths = sorted({d for _, _, d, _ in models})
    bars: dict[tuple, dict] = defaultdict(lambda: {"x": [], "y": [], "text": []})
    counted: set[tuple] = set()
    for r, kind, depth, involution in models:
        col = runs.index(r.run) + 1
        case = r.record.case
        B, H, W = case.get("B") or 1, case.get("H") or PUBLISHED_IMAGE_SIZE, case.get("W") or PUBLISHED_IMAGE_SIZE
        label = _label(kind, involution)
        network = "RedNet" if kind == "rednet" else "ResNet"
        x = f"{depth}"
        # parameters and MACs: one bar per (network, depth), whichever implementation carried the record
        if (col, network, depth) not in counted and r.record.params:
            counted.add((col, network, depth))
            name = f"{kind}{depth}"
            published = PUBLISHED.get(name) if (H, W) == (PUBLISHED_IMAGE_SIZE, PUBLISHED_IMAGE_SIZE) else None
            spec_macs = (r.record.counts or {}).get("macs_fwd")
            paper = bottleneck_net_counts(depth, kind == "rednet", H, W).paper_ops
            entries = [("params", f"{network} (this run)", r.record.params / 1e6, f"{r.record.params:,} parameters"),
                       ("macs", f"{network} (this run)", paper / 1e9,
                        f"{paper / 1e9:.3f} G in the published convention"
                        + (f"; {spec_macs / B / 1e9:.3f} G spec MACs (fvcore)" if spec_macs else ""))]
            if published is not None and published.params_m is not None:
                entries.append(("params", f"{network} (published)", published.params_m, published.source))
            if published is not None and published.paper_gflops is not None:
                entries.append(("macs", f"{network} (published)", published.paper_gflops, published.source))
            for metric, series, value, hover in entries:
                bucket = bars[(metric, col, series)]
                bucket["x"].append(x), bucket["y"].append(value), bucket["text"].append(esc(hover))
        at = f"{depth} B{B}"
        pass_ = r.record.pass_
        if pass_ in ("fwd", "train"):
            bucket = bars[(pass_, col, label)]
            iqr = f" (IQR {r.q1_ms:.4g}–{r.q3_ms:.4g})" if r.q1_ms is not None and r.q3_ms is not None else ""
            bucket["x"].append(at), bucket["y"].append(r.median_ms), bucket["text"].append(esc(f"{r.median_ms:.4g} ms{iqr}"))
        memory = r.record.memory
        if memory is not None and memory.peak_bytes:
            bucket = bars[("memory", col, label)]
            bucket["x"].append(f"{at} {pass_}"), bucket["y"].append(memory.peak_bytes / 2**20)
            bucket["text"].append(esc(f"{memory.peak_bytes / 2**20:.4g} MiB above the inputs, {pass_}"))
    present = [(key, title) for key, title in ROWS if any(k[0] == key for k in bars)]
    layout = facet_layout(len(present), n_cols, row_titles=[t for _, t in present],
                          col_titles=[esc(titles[i]) for i in runs] if n_cols > 1 else (), x_title="",
                          y_title="", x_type="category", y_type="linear",
                          title="RedNet against the ResNet of the same depth (hatched: published figures)",
                          row_height=260)
    layout["barmode"] = "group"
    for r_i, (key, title) in enumerate(present, start=1):
        for col in range(1, n_cols + 1):
            xa, ya = _axis_names(r_i, col, n_cols)
            layout["yaxis" + ya[1:]]["title"]["text"] = esc(title) if col == 1 else ""
            if key in ("fwd", "train", "memory"):  # batch 1 and batch 32 on one axis
                layout["yaxis" + ya[1:]]["type"] = "log"
            order = [str(d) for d in depths] if key in ("params", "macs") else None
            if order:
                layout["xaxis" + xa[1:]].update(categoryorder="array", categoryarray=order)
    first_rednet = next((colors[k] for k in kinds if k != "ResNet"), PALETTE[0])

    def color_of(series: str) -> str:
        if series.startswith("ResNet"):
            return RESNET_COLOR
        return colors.get(series, first_rednet)

    data, seen = [], set()
    def rank(series: str) -> tuple:  # ResNet before RedNet, the run's bar before the published one
        return (not series.startswith("ResNet"), series.endswith("(published)"), series)

    for (metric, col, series), bucket in sorted(bars.items(), key=lambda kv: (kv[0][1], kv[0][0], rank(kv[0][2]))):
        r_i = [k for k, _ in present].index(metric) + 1
        xa, ya = _axis_names(r_i, col, n_cols)
        is_published = series.endswith("(published)")
        data.append({
            "type": "bar", "name": esc(series), "legendgroup": esc(series), "showlegend": series not in seen,
            "x": bucket["x"], "y": bucket["y"], "text": bucket["text"], "xaxis": xa, "yaxis": ya,
            "offsetgroup": esc(series), "textposition": "none",
            "hovertemplate": "%{x}: %{y:.4g}<br>%{text}<extra>" + esc(series) + "</extra>",
            "marker": {"color": color_of(series), "opacity": 0.55 if is_published else 0.9,
                       "pattern": {"shape": "/" if is_published else ""}, "line": {"color": color_of(series), "width": 1}},
        })
        seen.add(series)
    return Figure("fig-models", data, layout)
