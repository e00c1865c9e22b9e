"""Turn an involution implementation into a torch custom op that every tool can see.

`define_involution_op(name, forward, backward)` registers two ops,
`invobench::involution_<name>` and `invobench::involution_<name>_backward`, each with
a fake (meta) implementation and a FLOP formula (spec §1: fwd 2·B·C·Ho·Wo·K² FLOPs,
bwd twice that), wires autograd between them, and records the op names so that
fvcore gets a MAC handle for them (see `invobench.counting.fvcore_handles`).
So torch.compile treats the op as opaque, FlopCounterMode and fvcore count it, and
the Triton/CUDA variants plug in by supplying their own forward and backward.
`define_native_involution_op(name)` defines the same two ops for kernels registered in
C++ (the CPU variant, whose per-call cost at batch 1 the Python layers would double).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch.utils.flop_counter import register_flop_formula

from invobench.core.shapes import out_size

Forward = Callable[[torch.Tensor, torch.Tensor, int, int, int], torch.Tensor]
Backward = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, int, int, int], tuple[torch.Tensor, torch.Tensor]]

#: qualified names ("invobench::involution_eager") of forward ops -> True, backward ops -> False
REGISTERED_OPS: dict[str, bool] = {}


def involution_macs_from_shapes(x_shape, kernel_shape) -> int:
    """MACs of one forward apply: B·C·Ho·Wo·K² (Ho, Wo, K² read off the kernel's shape)."""
    B, C = x_shape[0], x_shape[1]
    KK, Ho, Wo = kernel_shape[2], kernel_shape[3], kernel_shape[4]
    return int(B) * int(C) * int(Ho) * int(Wo) * int(KK)


def _fake_forward(x, kernel, kernel_size, stride, dilation):
    B, C, H, W = x.shape
    return x.new_empty(B, C, out_size(H, kernel_size, stride, dilation), out_size(W, kernel_size, stride, dilation))


def _fake_backward(grad_out, x, kernel, kernel_size, stride, dilation):
    # contiguous like every real backward returns, whatever the input's memory format
    return (torch.empty(x.shape, dtype=x.dtype, device=x.device),
            torch.empty(kernel.shape, dtype=kernel.dtype, device=kernel.device))


def _register_flops(fwd_name: str, bwd_name: str) -> None:
    @register_flop_formula(getattr(torch.ops.invobench, fwd_name.split("::")[1]))
    def _fwd_flops(x_shape, kernel_shape, *args, out_shape=None, **kwargs) -> int:
        return 2 * involution_macs_from_shapes(x_shape, kernel_shape)

    @register_flop_formula(getattr(torch.ops.invobench, bwd_name.split("::")[1]))
    def _bwd_flops(grad_out_shape, x_shape, kernel_shape, *args, out_shape=None, **kwargs) -> int:
        return 4 * involution_macs_from_shapes(x_shape, kernel_shape)

    REGISTERED_OPS[fwd_name] = True
    REGISTERED_OPS[bwd_name] = False


def _op_names(name: str) -> tuple[str, str]:
    fwd_name = f"invobench::involution_{name.replace('-', '_')}"
    return fwd_name, f"{fwd_name}_backward"


def define_involution_op(name: str, forward: Forward, backward: Backward):
    """Register `invobench::involution_<name>` (+ `_backward`) and return the forward op."""
    fwd_name, bwd_name = _op_names(name)

    @torch.library.custom_op(fwd_name, mutates_args=())
    def fwd_op(x: torch.Tensor, kernel: torch.Tensor, kernel_size: int, stride: int, dilation: int) -> torch.Tensor:
        return forward(x, kernel, kernel_size, stride, dilation)

    fwd_op.register_fake(_fake_forward)

    @torch.library.custom_op(bwd_name, mutates_args=())
    def bwd_op(
        grad_out: torch.Tensor, x: torch.Tensor, kernel: torch.Tensor, kernel_size: int, stride: int, dilation: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return backward(grad_out, x, kernel, kernel_size, stride, dilation)

    bwd_op.register_fake(_fake_backward)

    def setup_context(ctx, inputs, output):
        x, kernel, kernel_size, stride, dilation = inputs
        ctx.save_for_backward(x, kernel)
        ctx.args = (kernel_size, stride, dilation)

    def autograd_backward(ctx, grad_out):
        x, kernel = ctx.saved_tensors
        grad_x, grad_w = bwd_op(grad_out.contiguous(), x, kernel, *ctx.args)
        return grad_x, grad_w, None, None, None

    fwd_op.register_autograd(autograd_backward, setup_context=setup_context)
    _register_flops(fwd_name, bwd_name)
    return fwd_op


#: Libraries holding the schemas of natively implemented ops (a Library's definitions last as long as it does)
_NATIVE_LIBRARIES: list = []


def define_native_involution_op(name: str):
    """Define the schemas of `invobench::involution_<name>` (+ `_backward`) for kernels registered in C++.

    The C++ library registers the CPU (or CUDA) kernels of both ops and the forward's Autograd kernel
    (`TORCH_LIBRARY_IMPL(invobench, ...)`), with the same semantics as `define_involution_op` wires
    in Python; the fake kernels and FLOP formulas are registered here, so compile, FlopCounterMode
    and fvcore see the ops before that library is built. Returns the forward and backward OpOverloads.
    """
    fwd_name, bwd_name = _op_names(name)
    lib = torch.library.Library("invobench", "FRAGMENT")
    lib.define(f"{fwd_name.split('::')[1]}(Tensor x, Tensor kernel, int kernel_size, int stride, int dilation) -> Tensor")
    lib.define(f"{bwd_name.split('::')[1]}(Tensor grad_out, Tensor x, Tensor kernel, int kernel_size, int stride, "
               "int dilation) -> (Tensor, Tensor)")
    _NATIVE_LIBRARIES.append(lib)
    torch.library.register_fake(fwd_name, _fake_forward, lib=lib)
    torch.library.register_fake(bwd_name, _fake_backward, lib=lib)
    _register_flops(fwd_name, bwd_name)
    packet = torch.ops.invobench
    return getattr(packet, fwd_name.split("::")[1]).default, getattr(packet, bwd_name.split("::")[1]).default
