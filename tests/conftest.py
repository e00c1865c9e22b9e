import os

import pytest
import torch

# Two cores in CI: keep torch from oversubscribing when pytest-xdist or helpers run alongside.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
