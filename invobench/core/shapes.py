"""Shape arithmetic and input validation shared by every operator (spec §1 notation)."""
from __future__ import annotations

import torch

MAX_KERNEL_SIZE = 11


def padding_for(kernel_size: int, dilation: int = 1) -> int:
    """p = d·(K−1)/2; only defined for odd K (there is no explicit-padding argument)."""
    if kernel_size % 2 == 0:
        raise ValueError(
            f"kernel_size={kernel_size} is even; involution centres the window on each pixel, "
            "so K must be odd (1, 3, 5, 7, ...) as there is no explicit padding argument"
        )
    return dilation * (kernel_size - 1) // 2


def out_size(n: int, kernel_size: int, stride: int = 1, dilation: int = 1) -> int:
    """Ho = ⌊(H + 2p − d(K−1) − 1)/s⌋ + 1."""
    p = padding_for(kernel_size, dilation)
    return (n + 2 * p - dilation * (kernel_size - 1) - 1) // stride + 1


def check_positive_int(name: str, value, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}={value!r} must be an int >= {minimum}")
    if value < minimum:
        raise ValueError(f"{name}={value} is invalid: {name} must be >= {minimum}")


def check_involution_args(x: torch.Tensor, kernel: torch.Tensor, kernel_size: int, stride: int, dilation: int) -> int:
    """Validate the apply step's inputs (spec §1); returns G. Raises ValueError/TypeError naming the field."""
    if not isinstance(x, torch.Tensor) or not isinstance(kernel, torch.Tensor):
        raise TypeError(f"x and kernel must be torch.Tensor, got {type(x).__name__} and {type(kernel).__name__}")
    check_positive_int("kernel_size", kernel_size)
    check_positive_int("stride", stride)
    check_positive_int("dilation", dilation)
    padding_for(kernel_size, dilation)
    if x.dim() != 4:
        raise ValueError(f"x has {x.dim()} dimensions (shape {tuple(x.shape)}); expected 4-D (B, C, H, W)")
    if kernel.dim() != 5:
        raise ValueError(
            f"kernel has shape {tuple(kernel.shape)}; expected 5-D (B, G, K*K, Ho, Wo)"
        )
    if x.dtype != kernel.dtype:
        raise TypeError(f"dtype mismatch: x is {x.dtype} but kernel is {kernel.dtype}; pass both in one dtype")
    if not x.dtype.is_floating_point:
        raise TypeError(f"x.dtype={x.dtype} is not a floating-point dtype")
    if x.device != kernel.device:
        raise ValueError(f"device mismatch: x is on {x.device} but kernel is on {kernel.device}")
    B, C, H, W = x.shape
    G = kernel.shape[1]
    Ho, Wo = out_size(H, kernel_size, stride, dilation), out_size(W, kernel_size, stride, dilation)
    expected = (B, G, kernel_size * kernel_size, Ho, Wo)
    if G < 1 or C % G != 0:
        raise ValueError(
            f"channels C={C} is not divisible by groups G={G} (kernel.shape[1]); C must be a multiple of G"
        )
    if tuple(kernel.shape) != expected:
        raise ValueError(
            f"kernel has shape {tuple(kernel.shape)}; expected (B, G, K*K, Ho, Wo) = {expected} "
            f"for x of shape {tuple(x.shape)}, kernel_size={kernel_size}, stride={stride}, dilation={dilation}"
        )
    if Ho < 1 or Wo < 1:
        raise ValueError(f"output would be empty: Ho={Ho}, Wo={Wo} for H={H}, W={W}")
    return G
