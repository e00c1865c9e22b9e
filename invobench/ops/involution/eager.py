"""The `eager` variant: the float64-capable reference tap loop (`reference.py`) as a custom op."""
from invobench.ops.involution.reference import involution_reference, involution_reference_backward
from invobench.ops.involution.variant import ALL_FLOAT, involution_variant

VARIANTS = (
    involution_variant(
        "eager", involution_reference, involution_reference_backward, devices=("cpu", "cuda"), dtypes=ALL_FLOAT,
        description="reference loop over the K² taps in PyTorch ops; float64-capable ground truth",
    ),
)
