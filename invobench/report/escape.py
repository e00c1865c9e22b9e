"""Escaping for the report pages: text from results files reaches a page only through these."""
from __future__ import annotations

import html
import json
from typing import Any

import numpy as np


def esc(value: Any) -> str:
    """Text from a results file, escaped for HTML element content and attribute values."""
    return html.escape("" if value is None else str(value), quote=True)


def script_json(value: Any) -> str:
    """JSON that is safe inside <script>: no `</script>`, `<!--` or U+2028 can break out of it."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False, default=_json_default)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
