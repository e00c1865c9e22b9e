"""Convolution and local self-attention baselines: semantics of spec §3–4 and agreement between variants."""
import math

import pytest
import torch

from invobench.nn import DenseConv2d, DepthwiseConv2d, GroupedConv2d, LocalSelfAttention2d
from invobench.ops.attention import ATTENTION, neighborhood_attention
from invobench.ops.attention.unfold import neighborhood_attention_unfold


def naive_neighbourhood_attention(q, k, v, heads, K, s, d, rpb):
    """Spec §4 read literally: per query pixel, softmax over the in-image K×K window (dilation d)."""
    B, C, H, W = q.shape
    dh, r = C // heads, (K - 1) // 2
    Ho, Wo = len(range(0, H, s)), len(range(0, W, s))
    out = torch.zeros(B, C, Ho, Wo, dtype=q.dtype)
    for b in range(B):
        for h in range(heads):
            ch = slice(h * dh, (h + 1) * dh)
            for ho in range(Ho):
                for wo in range(Wo):
                    y0, x0 = ho * s, wo * s
                    logits, values = [], []
                    for i in range(K):
                        for j in range(K):
                            y, x = y0 + (i - r) * d, x0 + (j - r) * d
                            if 0 <= y < H and 0 <= x < W:
                                bias = rpb[h, i + K - 1 - r, j + K - 1 - r] if rpb is not None else 0.0
                                logits.append(q[b, ch, y0, x0] @ k[b, ch, y, x] / math.sqrt(dh) + bias)
                                values.append(v[b, ch, y, x])
                    attn = torch.softmax(torch.stack(logits), 0)
                    out[b, ch, ho, wo] = (attn[:, None] * torch.stack(values)).sum(0)
    return out


@pytest.mark.parametrize("K,s,d,use_rpb", [(3, 1, 1, False), (3, 2, 1, True), (5, 1, 2, True), (1, 1, 1, False)])
def test_unfold_attention_matches_the_literal_definition(K, s, d, use_rpb):
    q, k, v = (torch.randn(1, 4, 7, 6, dtype=torch.float64) for _ in range(3))
    rpb = torch.randn(2, 2 * K - 1, 2 * K - 1, dtype=torch.float64) if use_rpb else None
    expected = naive_neighbourhood_attention(q, k, v, 2, K, s, d, rpb)
    torch.testing.assert_close(neighborhood_attention_unfold(q, k, v, 2, K, s, d, rpb), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("K,s,use_rpb", [(3, 1, False), (5, 2, True)])
def test_flex_attention_agrees_with_unfold(K, s, use_rpb):
    q, k, v = (torch.randn(2, 8, 9, 10) for _ in range(3))
    rpb = torch.randn(2, 2 * K - 1, 2 * K - 1) if use_rpb else None
    expected = neighborhood_attention_unfold(q, k, v, 2, K, s, 1, rpb)
    torch.testing.assert_close(ATTENTION["flex"](q, k, v, 2, K, s, 1, rpb), expected, rtol=1e-5, atol=1e-5)


def test_attention_bad_input():
    q = torch.randn(1, 6, 5, 5)
    with pytest.raises(ValueError, match="C=6 is not divisible by heads=4"):
        neighborhood_attention(q, q, q, heads=4, kernel_size=3)
    with pytest.raises(ValueError, match=r"rpb has shape \(2, 3, 3\); expected \(heads, 2K-1, 2K-1\) = \(2, 5, 5\)"):
        neighborhood_attention(q, q, q, heads=2, kernel_size=3, rpb=torch.zeros(2, 3, 3))
    with pytest.raises(ValueError, match="unknown attention variant 'flx'. Did you mean 'flex'"):
        neighborhood_attention(q, q, q, heads=2, kernel_size=3, variant="flx")


def test_baseline_modules_have_spec_parameter_counts():
    C, K = 64, 7
    assert sum(p.numel() for p in DenseConv2d(C, K).parameters()) == C * C * K * K
    assert sum(p.numel() for p in GroupedConv2d(C, K, group_channels=16).parameters()) == C * 16 * K * K
    assert sum(p.numel() for p in DepthwiseConv2d(C, K).parameters()) == C * K * K
    assert sum(p.numel() for p in LocalSelfAttention2d(C, 4, K).parameters()) == 3 * C * C
    assert sum(p.numel() for p in LocalSelfAttention2d(C, 4, K, rpb=True).parameters()) == 3 * C * C + 4 * 13 * 13
    x = torch.randn(1, C, 9, 9)
    for module in (DenseConv2d(C, K, 2), GroupedConv2d(C, K, 2), DepthwiseConv2d(C, K, 2), LocalSelfAttention2d(C, 4, K, 2)):
        assert module(x).shape == (1, C, 5, 5)
