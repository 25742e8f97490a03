"""One CPU thread for the synthesis tests: faster on the shared 2-core machines and the only
setting at which the determinism assertions are meaningful across runs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
