"""Reading a run of portfolio versions in order, for explaining step by step.

`LakeReader.portfolio(v)` opens each version from scratch (log replay from the last checkpoint);
a span of consecutive versions is read much faster by one table handle moving forward
(`load_as_version` applies only the new commits). The frames are the same as the reader's.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import polars as pl
from deltalake import DeltaTable

from v6core.lake import PORTFOLIO, LakeReader, VersionUnavailableError, table_path


def frames_in_order(reader: LakeReader, versions: Sequence[int]) -> Iterator[tuple[int, pl.DataFrame]]:
    """(version, legs frame) for ascending `versions`; VersionUnavailableError names a vacuumed one."""
    path = str(table_path(reader.root, PORTFOLIO))
    table: DeltaTable | None = None
    for version in versions:
        try:
            if table is None:
                table = DeltaTable(path, version=version)
            else:
                table.load_as_version(version)
            frame = pl.from_arrow(table.to_pyarrow_table())
        except FileNotFoundError as exc:
            raise VersionUnavailableError(
                f"version {version}: its data files were removed by vacuum ({exc})") from None
        except Exception as exc:  # deltalake raises its own errors for versions beyond the log
            if "No such file" in str(exc) or "not found" in str(exc).lower():
                raise VersionUnavailableError(
                    f"version {version}: its data files were removed by vacuum ({exc})") from None
            raise
        yield version, frame
