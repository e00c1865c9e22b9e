"""Layers: the involution layer and the baselines it is measured against."""
from invobench.nn.attention import LocalSelfAttention2d
from invobench.nn.conv import DenseConv2d, DepthwiseConv2d, GroupedConv2d
from invobench.nn.involution import Involution2d

__all__ = ["Involution2d", "DenseConv2d", "GroupedConv2d", "DepthwiseConv2d", "LocalSelfAttention2d"]
