"""Tests by subsystem (ops, counting, models, bench, report, cli); shared harnesses in tests/harness/."""
import os
import sys
from pathlib import Path

import pytest
import torch

# the harnesses (synthetic results, the gate harness, the fault plugin) import as top-level modules
sys.path.insert(0, str(Path(__file__).resolve().parent / "harness"))

# Two cores in CI: keep torch from oversubscribing when pytest-xdist or helpers run alongside.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
