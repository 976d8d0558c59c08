"""Copy a local lake to object storage with its full history: `python -m v6core.lake copy --from DIR --to s3://…`.

Files are copied byte for byte, every table's data files before its log and the log in version
order, so a reader looking at the destination during the copy never meets a commit whose files
are missing, and every version that opened locally opens there afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from pyarrow import fs

from v6core.lake.journal import JOURNAL_DIR
from v6core.lake.schemas import LakeError, is_table
from v6core.lake.storage import LakeLocation


def s3_filesystem(location: LakeLocation) -> fs.S3FileSystem:
    options = location.storage_options
    endpoint = urlparse(options.get("AWS_ENDPOINT_URL", ""))
    return fs.S3FileSystem(
        access_key=options.get("AWS_ACCESS_KEY_ID"), secret_key=options.get("AWS_SECRET_ACCESS_KEY"),
        session_token=options.get("AWS_SESSION_TOKEN"), region=options.get("AWS_REGION", "us-east-1"),
        endpoint_override=endpoint.netloc or None, scheme=endpoint.scheme or "https")


def _copy_order(folder: Path) -> list[Path]:
    files = [p for p in folder.rglob("*") if p.is_file()]

    def key(p: Path) -> tuple[int, str]:
        rel = p.relative_to(folder).as_posix()
        if rel.startswith("_delta_log/"):
            return (2 if p.name == "_last_checkpoint" else 1, rel)
        return (0, rel)
    return sorted(files, key=key)


def copy_lake(source: Path, destination: LakeLocation,
              progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Copy every table (and the audit journal) under `source` to `destination`; files per folder."""
    if destination.local is not None:
        raise LakeError("copy writes to object storage (s3://bucket/prefix); to copy a local lake, copy its folder")
    parsed = urlparse(destination.uri)
    base = f"{parsed.netloc}/{parsed.path.strip('/')}".rstrip("/")
    target = s3_filesystem(destination)
    folders = sorted(p for p in source.iterdir() if p.is_dir() and (is_table(p) or p.name == JOURNAL_DIR))
    copied: dict[str, int] = {}
    for folder in folders:
        count = 0
        for file in _copy_order(folder):
            with file.open("rb") as src, target.open_output_stream(
                    f"{base}/{folder.name}/{file.relative_to(folder).as_posix()}") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
            count += 1
        copied[folder.name] = count
        if progress:
            progress(folder.name, count)
    return copied
