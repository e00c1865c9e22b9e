"""The Triton kernels of the involution apply (spec §1): `triton` (tiled) and `triton-simple` (one lane
per element). Launchers, autotuning and the variants: `triton.py`, whose docstring gives the design.

Only builtins of triton.language are used (`tl.full`, `tl.reduce`), so the kernels also run under
Triton's interpreter when TRITON_INTERPRET=1 is set after import (see `triton._runnable`).
"""
from __future__ import annotations

from typing import Optional


try:  # optional dependency: without it the variants are listed as unavailable, with the reason
    import triton
    import triton.language as tl

    _TRITON_IMPORT_ERROR: Optional[str] = None
except ImportError as _exc:  # pragma: no cover - exercised only on machines without triton
    triton = None
    tl = None
    _TRITON_IMPORT_ERROR = f"triton is not installed ({_exc}); pip install 'invobench[triton]'"


def _jit(fn):
    """`triton.jit` when triton is importable; otherwise the plain function (never launched then)."""
    return triton.jit(fn) if triton is not None else fn


# --------------------------------------------------------------------------------------------
# Kernels: `triton`
# --------------------------------------------------------------------------------------------


@_jit
def involution_fwd_kernel(
    x_ptr, w_ptr, out_ptr,
    C, H, W, Ho, Wo, G, Cg,
    dilation, padding,
    n_tiles, n_cblocks,
    K: tl.constexpr, STRIDE: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr, USE_INT64: tl.constexpr,
):
    # program -> (b·G + g, channel block, pixel tile); pixel tiles vary fastest so neighbouring
    # programs share input halo rows in L2.
    pid = tl.program_id(0)
    if USE_INT64:
        pid = pid.to(tl.int64)
    tile = pid % n_tiles
    rest = pid // n_tiles
    cblock = rest % n_cblocks
    bg = rest // n_cblocks
    b = bg // G
    g = bg % G
    n_out = Ho * Wo

    offs_p = tile * BLOCK_P + tl.arange(0, BLOCK_P)
    p_mask = offs_p < n_out
    ho = offs_p // Wo
    wo = offs_p % Wo
    offs_c = cblock * BLOCK_C + tl.arange(0, BLOCK_C)
    c_mask = offs_c < Cg
    chan = b * C + g * Cg + offs_c                       # flat (b, c) index of each channel of the block

    x_rows = x_ptr + (chan * (H * W))[:, None]           # [BLOCK_C, 1]
    w_taps = w_ptr + bg * (K * K * n_out) + offs_p       # [BLOCK_P], tap 0
    hi0 = ho * STRIDE - padding
    wi0 = wo * STRIDE - padding

    acc = tl.full([BLOCK_C, BLOCK_P], 0.0, tl.float32)
    for i in range(K):
        hi = hi0 + i * dilation
        row_ok = p_mask & (hi >= 0) & (hi < H)
        for j in range(K):
            wi = wi0 + j * dilation
            ok = row_ok & (wi >= 0) & (wi < W)
            # the per-pixel kernel value: loaded once, used for all BLOCK_C channels
            wv = tl.load(w_taps + (i * K + j) * n_out, mask=p_mask, other=0.0).to(tl.float32)
            xv = tl.load(x_rows + (hi * W + wi)[None, :], mask=c_mask[:, None] & ok[None, :], other=0.0)
            acc += wv[None, :] * xv.to(tl.float32)

    out_ptrs = out_ptr + (chan * n_out)[:, None] + offs_p[None, :]
    tl.store(out_ptrs, acc.to(out_ptr.dtype.element_ty), mask=c_mask[:, None] & p_mask[None, :])


@_jit
def involution_bwd_input_kernel(
    gout_ptr, w_ptr, gx_ptr,
    C, H, W, Ho, Wo, G, Cg,
    dilation, padding,
    n_tiles, n_cblocks,
    K: tl.constexpr, STRIDE: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr, USE_INT64: tl.constexpr,
):
    # grad_x[b, c, y, x'] = Σ_{i,j} w[b, g, iK+j, ho, wo]·gout[b, c, ho, wo] with ho·s − p + i·d = y, wo likewise:
    # a gather over input pixels, so each grad_x element is written by exactly one program (no atomics).
    pid = tl.program_id(0)
    if USE_INT64:
        pid = pid.to(tl.int64)
    tile = pid % n_tiles
    rest = pid // n_tiles
    cblock = rest % n_cblocks
    bg = rest // n_cblocks
    b = bg // G
    g = bg % G
    n_in = H * W
    n_out = Ho * Wo

    offs_p = tile * BLOCK_P + tl.arange(0, BLOCK_P)
    p_mask = offs_p < n_in
    y = offs_p // W
    xc = offs_p % W
    offs_c = cblock * BLOCK_C + tl.arange(0, BLOCK_C)
    c_mask = offs_c < Cg
    chan = b * C + g * Cg + offs_c

    g_rows = gout_ptr + (chan * n_out)[:, None]
    w_base = w_ptr + bg * (K * K * n_out)

    acc = tl.full([BLOCK_C, BLOCK_P], 0.0, tl.float32)
    for i in range(K):
        hn = y + padding - i * dilation                  # = ho·s when this tap reads y
        if STRIDE == 1:
            ho = hn
            row_ok = p_mask & (hn >= 0) & (hn < Ho)
        else:
            ho = hn // STRIDE
            row_ok = p_mask & (hn >= 0) & (hn % STRIDE == 0) & (ho < Ho)
        for j in range(K):
            wn = xc + padding - j * dilation
            if STRIDE == 1:
                wo = wn
                ok = row_ok & (wn >= 0) & (wn < Wo)
            else:
                wo = wn // STRIDE
                ok = row_ok & (wn >= 0) & (wn % STRIDE == 0) & (wo < Wo)
            pix = ho * Wo + wo
            wv = tl.load(w_base + (i * K + j) * n_out + pix, mask=ok, other=0.0).to(tl.float32)
            gv = tl.load(g_rows + pix[None, :], mask=c_mask[:, None] & ok[None, :], other=0.0)
            acc += wv[None, :] * gv.to(tl.float32)

    gx_ptrs = gx_ptr + (chan * n_in)[:, None] + offs_p[None, :]
    tl.store(gx_ptrs, acc.to(gx_ptr.dtype.element_ty), mask=c_mask[:, None] & p_mask[None, :])


@_jit
def involution_bwd_kernel_kernel(
    gout_ptr, x_ptr, gw_ptr,
    C, H, W, Ho, Wo, G, Cg,
    dilation, padding,
    n_tiles,
    K: tl.constexpr, STRIDE: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr, SINGLE_CHUNK: tl.constexpr, USE_INT64: tl.constexpr,
):
    # grad_w[b, g, iK+j, ho, wo] = Σ_{c<Cg} gout[b, gCg+c, ho, wo]·x[b, gCg+c, ho·s−p+i·d, wo·s−p+j·d]:
    # the channel sum is a register reduction inside the program, so grad_w is written once, no atomics.
    pid = tl.program_id(0)
    if USE_INT64:
        pid = pid.to(tl.int64)
    tile = pid % n_tiles
    bg = pid // n_tiles
    b = bg // G
    g = bg % G
    n_out = Ho * Wo

    offs_p = tile * BLOCK_P + tl.arange(0, BLOCK_P)
    p_mask = offs_p < n_out
    ho = offs_p // Wo
    wo = offs_p % Wo
    hi0 = ho * STRIDE - padding
    wi0 = wo * STRIDE - padding
    arange_c = tl.arange(0, BLOCK_C)
    chan0 = b * C + g * Cg                                # flat (b, c) index of the group's first channel
    gw_taps = gw_ptr + bg * (K * K * n_out) + offs_p

    if SINGLE_CHUNK:
        # all Cg channels fit in one tile: gout is loaded once and held in registers across the K² taps
        c_mask = arange_c < Cg
        chan = chan0 + arange_c
        gv = tl.load(gout_ptr + (chan * n_out)[:, None] + offs_p[None, :],
                     mask=c_mask[:, None] & p_mask[None, :], other=0.0).to(tl.float32)
        x_rows = x_ptr + (chan * (H * W))[:, None]
        for i in range(K):
            hi = hi0 + i * dilation
            row_ok = p_mask & (hi >= 0) & (hi < H)
            for j in range(K):
                wi = wi0 + j * dilation
                ok = row_ok & (wi >= 0) & (wi < W)
                xv = tl.load(x_rows + (hi * W + wi)[None, :], mask=c_mask[:, None] & ok[None, :], other=0.0)
                tap = tl.reduce(gv * xv.to(tl.float32), 0, tl.standard._sum_combine)
                tl.store(gw_taps + (i * K + j) * n_out, tap.to(gw_ptr.dtype.element_ty), mask=p_mask)
    else:
        for i in range(K):
            hi = hi0 + i * dilation
            row_ok = p_mask & (hi >= 0) & (hi < H)
            for j in range(K):
                wi = wi0 + j * dilation
                ok = row_ok & (wi >= 0) & (wi < W)
                tap = tl.full([BLOCK_P], 0.0, tl.float32)
                for c0 in range(0, Cg, BLOCK_C):
                    offs_c = c0 + arange_c
                    c_mask = offs_c < Cg
                    chan = chan0 + offs_c
                    gv = tl.load(gout_ptr + (chan * n_out)[:, None] + offs_p[None, :],
                                 mask=c_mask[:, None] & p_mask[None, :], other=0.0)
                    xv = tl.load(x_ptr + (chan * (H * W))[:, None] + (hi * W + wi)[None, :],
                                 mask=c_mask[:, None] & ok[None, :], other=0.0)
                    tap += tl.reduce(gv.to(tl.float32) * xv.to(tl.float32), 0, tl.standard._sum_combine)
                tl.store(gw_taps + (i * K + j) * n_out, tap.to(gw_ptr.dtype.element_ty), mask=p_mask)


# --------------------------------------------------------------------------------------------
# Kernels: `triton-simple` (one lane per output element, no reuse across the group's channels)
# --------------------------------------------------------------------------------------------


@_jit
def involution_fwd_simple_kernel(
    x_ptr, w_ptr, out_ptr,
    C, H, W, Ho, Wo, G, Cg,
    dilation, padding, n_total,
    K: tl.constexpr, STRIDE: tl.constexpr, BLOCK: tl.constexpr, USE_INT64: tl.constexpr,
):
    pid = tl.program_id(0)
    if USE_INT64:
        pid = pid.to(tl.int64)
    offs = pid * BLOCK + tl.arange(0, BLOCK)             # flat index into out (B, C, Ho, Wo)
    mask = offs < n_total
    wo = offs % Wo
    ho = (offs // Wo) % Ho
    bc = offs // (Ho * Wo)                               # b·C + c
    b = bc // C
    g = (bc % C) // Cg
    w_base = w_ptr + (b * G + g) * (K * K * Ho * Wo) + ho * Wo + wo
    x_base = x_ptr + bc * (H * W)
    acc = tl.full([BLOCK], 0.0, tl.float32)
    for i in range(K):
        hi = ho * STRIDE - padding + i * dilation
        for j in range(K):
            wi = wo * STRIDE - padding + j * dilation
            ok = mask & (hi >= 0) & (hi < H) & (wi >= 0) & (wi < W)
            wv = tl.load(w_base + (i * K + j) * (Ho * Wo), mask=mask, other=0.0).to(tl.float32)
            xv = tl.load(x_base + hi * W + wi, mask=ok, other=0.0).to(tl.float32)
            acc += wv * xv
    tl.store(out_ptr + offs, acc.to(out_ptr.dtype.element_ty), mask=mask)


@_jit
def involution_bwd_input_simple_kernel(
    gout_ptr, w_ptr, gx_ptr,
    C, H, W, Ho, Wo, G, Cg,
    dilation, padding, n_total,
    K: tl.constexpr, STRIDE: tl.constexpr, BLOCK: tl.constexpr, USE_INT64: tl.constexpr,
):
    pid = tl.program_id(0)
    if USE_INT64:
        pid = pid.to(tl.int64)
    offs = pid * BLOCK + tl.arange(0, BLOCK)             # flat index into grad_x (B, C, H, W)
    mask = offs < n_total
    xc = offs % W
    y = (offs // W) % H
    bc = offs // (H * W)
    b = bc // C
    g = (bc % C) // Cg
    w_base = w_ptr + (b * G + g) * (K * K * Ho * Wo)
    g_base = gout_ptr + bc * (Ho * Wo)
    acc = tl.full([BLOCK], 0.0, tl.float32)
    for i in range(K):
        hn = y + padding - i * dilation
        ho = hn // STRIDE
        for j in range(K):
            wn = xc + padding - j * dilation
            wo = wn // STRIDE
            ok = mask & (hn >= 0) & (hn % STRIDE == 0) & (ho < Ho) & (wn >= 0) & (wn % STRIDE == 0) & (wo < Wo)
            wv = tl.load(w_base + (i * K + j) * (Ho * Wo) + ho * Wo + wo, mask=ok, other=0.0).to(tl.float32)
            gv = tl.load(g_base + ho * Wo + wo, mask=ok, other=0.0).to(tl.float32)
            acc += wv * gv
    tl.store(gx_ptr + offs, acc.to(gx_ptr.dtype.element_ty), mask=mask)


@_jit
def involution_bwd_kernel_simple_kernel(
    gout_ptr, x_ptr, gw_ptr,
    C, H, W, Ho, Wo, G, Cg,
    dilation, padding, n_total,
    K: tl.constexpr, STRIDE: tl.constexpr, BLOCK: tl.constexpr, USE_INT64: tl.constexpr,
):
    pid = tl.program_id(0)
    if USE_INT64:
        pid = pid.to(tl.int64)
    offs = pid * BLOCK + tl.arange(0, BLOCK)             # flat index into grad_w (B, G, K², Ho, Wo)
    mask = offs < n_total
    wo = offs % Wo
    ho = (offs // Wo) % Ho
    tap = (offs // (Ho * Wo)) % (K * K)
    bg = offs // (K * K * Ho * Wo)
    b = bg // G
    g = bg % G
    hi = ho * STRIDE - padding + (tap // K) * dilation
    wi = wo * STRIDE - padding + (tap % K) * dilation
    ok = mask & (hi >= 0) & (hi < H) & (wi >= 0) & (wi < W)
    chan0 = b * C + g * Cg
    acc = tl.full([BLOCK], 0.0, tl.float32)
    for c in range(0, Cg):
        gv = tl.load(gout_ptr + (chan0 + c) * (Ho * Wo) + ho * Wo + wo, mask=mask, other=0.0).to(tl.float32)
        xv = tl.load(x_ptr + (chan0 + c) * (H * W) + hi * W + wi, mask=ok, other=0.0).to(tl.float32)
        acc += gv * xv
    tl.store(gw_ptr + offs, acc.to(gw_ptr.dtype.element_ty), mask=mask)
