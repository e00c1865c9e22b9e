"""Operator families. Importing this package registers every variant."""
from invobench.ops.involution import involution  # noqa: F401
from invobench.ops import conv as _conv  # noqa: F401
from invobench.ops import attention as _attention  # noqa: F401

__all__ = ["involution"]
