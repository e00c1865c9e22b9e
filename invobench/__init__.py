"""invobench: benchmark and profile involution against convolution and local self-attention."""

__version__ = "0.1.0"
