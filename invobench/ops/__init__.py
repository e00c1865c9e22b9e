"""Operator families: involution (the operator under test), convolution and local self-attention.

Each family package declares its variants (`VARIANTS`: what each implementation can run, and its
operator callable); nothing is registered by importing them.
"""
from invobench.ops.involution import involution

__all__ = ["involution"]
