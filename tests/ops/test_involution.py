"""Every available involution variant against the float64 reference, plus the API's contract and bad input."""
import pytest
import torch

from invobench.check import CHECK_SHAPES, check_variant
from invobench.core import Case
from invobench.nn import Involution2d
from invobench.ops.involution import AUTO_ORDER, involution, variant_for
from invobench.ops.involution.reference import involution_reference, involution_reference_backward
from invobench.registry import all_variants, get

# compile costs ~20–30 s per shape (fwd and bwd each) to build on 2 cores: the default tier checks
# it on one shape in float32 (CHECK_SHAPES[0], shared with the count tests); the rest is `slow`.
COMPILE_SHAPES = {0}
INVOLUTION = [v for v in all_variants("involution") if not v.unavailable_reasons()]


def _params():
    for v in INVOLUTION:
        for dtype in ("float32", "bfloat16"):
            for i, shape in enumerate(CHECK_SHAPES):
                marks = [pytest.mark.slow] if v.name == "compile" and (i not in COMPILE_SHAPES or dtype != "float32") else []
                yield pytest.param(v.key, dtype, shape, id=f"{v.name}-{dtype}-{shape.layout}-{shape.case.label().replace(' ', '_')}",
                                   marks=marks)


@pytest.mark.parametrize("key,dtype,shape", list(_params()))
def test_variant_matches_float64_reference(key, dtype, shape):
    results = check_variant(get(key), shape, dtype)
    skipped = [r for r in results if r.max_abs is None]
    if skipped and len(skipped) == len(results):
        pytest.skip(skipped[0].detail)
    failures = [f"{r.tensor}: {r.detail}" for r in results if not r.ok]
    assert not failures, "\n".join(failures)
    assert {r.tensor for r in results} >= {"out", "grad_x", "grad_kernel"}


def test_explicit_backward_matches_autograd_of_reference():
    x = torch.randn(2, 6, 9, 8, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 3, 25, 5, 4, dtype=torch.float64, requires_grad=True)
    out = involution_reference(x, w, 5, 2, 1)
    g = torch.randn_like(out)
    gx, gw = torch.autograd.grad(out, (x, w), g)
    ex, ew = involution_reference_backward(g, x.detach(), w.detach(), 5, 2, 1)
    torch.testing.assert_close(ex, gx, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ew, gw, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("variant", ["eager", "unfold"])
@pytest.mark.parametrize("stride,dilation,K", [(1, 1, 3), (2, 1, 3), (1, 2, 3), (2, 1, 1)])
def test_gradcheck_float64(variant, stride, dilation, K):
    from invobench.core import out_size

    H, W = 7, 6
    x = torch.randn(1, 4, H, W, dtype=torch.float64, requires_grad=True)
    w = torch.randn(1, 2, K * K, out_size(H, K, stride, dilation), out_size(W, K, stride, dilation),
                    dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, w: involution(x, w, kernel_size=K, stride=stride, dilation=dilation, variant=variant), (x, w)
    )


def test_reference_against_a_direct_per_pixel_loop():
    """An independent reading of spec §1, index by index, on a tiny input (borders, stride, dilation)."""
    B, C, H, W, G, K, s, d = 1, 4, 5, 6, 2, 3, 2, 2
    p = d * (K - 1) // 2
    Ho, Wo = (H + 2 * p - d * (K - 1) - 1) // s + 1, (W + 2 * p - d * (K - 1) - 1) // s + 1
    x = torch.randn(B, C, H, W, dtype=torch.float64)
    w = torch.randn(B, G, K * K, Ho, Wo, dtype=torch.float64)
    expected = torch.zeros(B, C, Ho, Wo, dtype=torch.float64)
    Cg = C // G
    for c in range(C):
        for ho in range(Ho):
            for wo in range(Wo):
                for i in range(K):
                    for j in range(K):
                        y, xx = ho * s - p + i * d, wo * s - p + j * d
                        if 0 <= y < H and 0 <= xx < W:
                            expected[0, c, ho, wo] += w[0, c // Cg, i * K + j, ho, wo] * x[0, c, y, xx]
    torch.testing.assert_close(involution_reference(x, w, K, s, d), expected, rtol=1e-12, atol=1e-12)


def _xw(B=2, C=8, H=9, W=9, G=2, K=3, Ho=None, Wo=None, dtype=torch.float32):
    return torch.randn(B, C, H, W, dtype=dtype), torch.randn(B, G, K * K, Ho or H, Wo or W, dtype=dtype)


@pytest.mark.parametrize("make,kwargs,error,match", [
    (lambda: _xw(C=9, G=2), dict(kernel_size=3), ValueError, r"C=9 is not divisible by groups G=2"),
    (lambda: _xw(K=4), dict(kernel_size=4), ValueError, r"kernel_size=4 is even"),
    (lambda: _xw(Ho=8), dict(kernel_size=3), ValueError, r"expected \(B, G, K\*K, Ho, Wo\) = \(2, 2, 9, 9, 9\)"),
    (lambda: (torch.randn(2, 8, 9, 9), torch.randn(2, 2, 9, 9, 9, dtype=torch.float64)), dict(kernel_size=3),
     TypeError, r"dtype mismatch: x is torch.float32 but kernel is torch.float64"),
    (lambda: (torch.randn(8, 9, 9), torch.randn(2, 2, 9, 9, 9)), dict(kernel_size=3), ValueError, r"expected 4-D"),
    (lambda: _xw(), dict(kernel_size=3, stride=0), ValueError, r"stride=0 is invalid: stride must be >= 1"),
    (lambda: _xw(), dict(kernel_size=3, dilation=0), ValueError, r"dilation=0 is invalid"),
    (lambda: _xw(), dict(kernel_size=3, variant="eagre"), ValueError, r"unknown involution variant 'eagre'. Did you mean 'eager'"),
    (lambda: _xw(), dict(kernel_size=3, variant="cuda"), ValueError, r"'cuda' cannot run a float32 tensor on cpu"),
    (lambda: _xw(dtype=torch.float64), dict(kernel_size=3, variant="compile"), ValueError, r"dtype float64 not supported"),
])
def test_bad_input_names_the_field(make, kwargs, error, match):
    x, w = make()
    with pytest.raises(error, match=match):
        involution(x, w, **kwargs)


def test_empty_batch_returns_empty_output_with_grads():
    x, w = _xw(B=0)
    x.requires_grad_(True)
    out = involution(x, w, kernel_size=3)
    assert out.shape == (0, 8, 9, 9)
    out.sum().backward()
    assert x.grad.shape == x.shape


def test_auto_picks_the_first_available_in_order():
    x = torch.randn(1, 4, 5, 5)
    chosen = variant_for(x, "auto")
    order = AUTO_ORDER["cpu"]
    for name in order[: order.index(chosen)]:  # everything preferred over the choice must be unable to run
        assert get(name, "involution").why_not(_case_of(x)), name
    assert not get(chosen, "involution").why_not(_case_of(x))


def _case_of(x):
    from invobench.registry import Case

    return Case(B=1, C=1, H=1, W=1, K=1, dtype=str(x.dtype).removeprefix("torch."), device=x.device.type)


@pytest.mark.parametrize("stride", [1, 2])
def test_layer_shapes_params_and_variants_agree(stride):
    torch.manual_seed(0)
    layer = Involution2d(32, 7, stride, group_channels=8, reduction=4, variant="eager").double()
    x = torch.randn(2, 32, 13, 12, dtype=torch.float64)  # odd size: pool (ceil mode) and apply agree on Ho, Wo
    out = layer(x)
    assert out.shape == (2, 32, -(-13 // stride), -(-12 // stride))
    layer.variant = "unfold"
    torch.testing.assert_close(layer(x), out, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kwargs,match", [
    (dict(channels=30, group_channels=16), "channels=30 is not divisible by group_channels=16"),
    (dict(channels=32, kernel_size=6), "kernel_size=6 is even"),
    (dict(channels=32, stride=0), "stride=0 is invalid"),
])
def test_layer_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Involution2d(**kwargs)


def test_a_nan_kernel_value_at_a_tap_outside_the_image_follows_the_spec_in_each_variant(monkeypatch):
    """docs/spec.md §1: eager, unfold and triton form w·0 (NaN for w = NaN); the cpu kernel skips taps
    outside the image. Everywhere else, and for finite kernels, all agree."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    x = torch.randn(1, 4, 5, 5)
    w = torch.randn(1, 1, 9, 5, 5) / 3
    w[0, 0, 0, 0, 0] = float("nan")  # tap (0, 0) of output pixel (0, 0) reads x at (-1, -1): padding
    finite = w.clone()
    finite[0, 0, 0, 0, 0] = 0.0  # what skipping that tap amounts to
    expected = involution_reference(x, finite, 3)
    for name in ("eager", "unfold", "triton", "cpu"):
        if get(f"involution.{name}").why_not(Case(B=1, C=4, H=5, W=5, K=3, G=1)):
            continue
        out = involution(x, w, kernel_size=3, variant=name)
        corner = out[0, :, 0, 0]
        if name == "cpu":
            assert torch.isfinite(corner).all() and torch.allclose(corner, expected[0, :, 0, 0]), name
        else:
            assert torch.isnan(corner).all(), name
        rest = torch.ones_like(out, dtype=torch.bool)
        rest[0, :, 0, 0] = False
        assert torch.allclose(out[rest], expected[rest], atol=1e-5), name
