from __future__ import annotations

from pathlib import Path

import pytest

from tests.lake.factory import snapshot_at
from v6core.lake import LakeWriter


def write_lake(root: Path, count: int, **writer_kwargs) -> list:
    """Write snapshots 0..count-1 through a LakeWriter (lock released afterwards)."""
    snapshots = [snapshot_at(i) for i in range(count)]
    writer = LakeWriter(root, **writer_kwargs)
    try:
        for snap in snapshots:
            writer.write_snapshot(snap)
    finally:
        writer.stop()
    return snapshots


@pytest.fixture
def lake_root(tmp_path: Path) -> Path:
    return tmp_path / "lake"


@pytest.fixture
def small_lake(lake_root: Path) -> tuple[Path, list]:
    return lake_root, write_lake(lake_root, 8)
