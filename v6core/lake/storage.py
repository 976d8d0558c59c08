"""Where the lake lives: a local folder (the default) or `s3://bucket/prefix` on any S3-compatible store.

A local root stays a `pathlib.Path`. An object-storage root is an `S3Root`, which quacks like the
few `Path` operations the lake uses (`/`, `name`, `mkdir`, `is_dir`) and carries the storage options
deltalake needs. Its `str()` is the bare URI and its `repr()` never shows a credential; `redact()`
removes secret values from any text (error messages) before it is shown or logged.

Commits on S3 rely on the store's conditional writes (put-if-absent, `If-None-Match: *`): delta-rs
writes `_delta_log/N.json` with `AWS_CONDITIONAL_PUT=etag`, so two writers racing for version N
cannot both win, on any host. `AWS_S3_ALLOW_UNSAFE_RENAME` is never set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl
from deltalake import DeltaTable, write_deltalake

S3_SCHEMES = ("s3://", "s3a://")

# The standard AWS environment, read when a setting leaves the value empty (same names as boto3 / the CLI).
_ENV_KEYS = {
    "AWS_ENDPOINT_URL": ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
    "AWS_REGION": ("AWS_REGION", "AWS_DEFAULT_REGION"),
    "AWS_ACCESS_KEY_ID": ("AWS_ACCESS_KEY_ID",),
    "AWS_SECRET_ACCESS_KEY": ("AWS_SECRET_ACCESS_KEY",),
    "AWS_SESSION_TOKEN": ("AWS_SESSION_TOKEN",),
}
_SECRET_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def is_s3_uri(value: object) -> bool:
    return isinstance(value, str) and value.lower().startswith(S3_SCHEMES)


def s3_options(endpoint_url: str = "", region: str = "", access_key_id: str = "", secret_access_key: str = "",
               session_token: str = "", allow_http: bool | None = None,
               path_style: bool | None = None) -> dict[str, str]:
    """deltalake storage options from explicit values, falling back to the standard AWS environment.

    A custom endpoint (MinIO, R2, moto) gets path-style addressing unless told otherwise, and plain
    http only when its URL says http. Conditional put (etag) is always on: it is what makes
    concurrent commits safe on S3.
    """
    given = {"AWS_ENDPOINT_URL": endpoint_url, "AWS_REGION": region, "AWS_ACCESS_KEY_ID": access_key_id,
             "AWS_SECRET_ACCESS_KEY": secret_access_key, "AWS_SESSION_TOKEN": session_token}
    options: dict[str, str] = {}
    for key, value in given.items():
        value = value or next((os.environ[name] for name in _ENV_KEYS[key] if os.environ.get(name)), "")
        if value:
            options[key] = value
    options.setdefault("AWS_REGION", "us-east-1")
    endpoint = options.get("AWS_ENDPOINT_URL", "")
    if allow_http is None:
        allow_http = endpoint.lower().startswith("http://")
    if allow_http:
        options["AWS_ALLOW_HTTP"] = "true"
    if path_style is None:
        path_style = bool(endpoint)
    options["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = "false" if path_style else "true"
    options["AWS_CONDITIONAL_PUT"] = "etag"
    return options


class S3Root:
    """A lake root (or a table folder under it) on object storage."""

    __slots__ = ("uri", "_options")

    def __init__(self, uri: str, options: Mapping[str, str] | None = None) -> None:
        if not is_s3_uri(uri):
            raise ValueError(f"not an s3:// URI: {uri!r}")
        scheme, rest = uri.split("://", 1)
        bucket, _, prefix = rest.strip("/").partition("/")
        if not bucket:
            raise ValueError(f"{uri!r} names no bucket")
        self.uri = f"s3://{bucket}/{prefix.strip('/')}".rstrip("/")
        self._options = dict(options) if options is not None else s3_options()

    # -- what the lake uses of pathlib.Path
    def __truediv__(self, name: str) -> S3Root:
        return S3Root(f"{self.uri}/{str(name).strip('/')}", self._options)

    @property
    def name(self) -> str:
        return self.uri.rsplit("/", 1)[-1] if self.key else ""

    @property
    def parent(self) -> S3Root:
        return S3Root(self.uri.rsplit("/", 1)[0], self._options) if self.key else self

    def mkdir(self, *args: Any, **kwargs: Any) -> None:
        """Object storage has no folders: a prefix exists once an object is written under it."""

    def is_dir(self) -> bool:
        return True   # callers then ask deltalake whether a table is there

    # -- object-storage specifics
    @property
    def bucket(self) -> str:
        return self.uri[5:].split("/", 1)[0]

    @property
    def key(self) -> str:
        """The prefix inside the bucket, without leading or trailing slash."""
        parts = self.uri[5:].split("/", 1)
        return parts[1] if len(parts) > 1 else ""

    @property
    def storage_options(self) -> dict[str, str]:
        return dict(self._options)

    def redact(self, text: str) -> str:
        for key in _SECRET_KEYS:
            value = self._options.get(key)
            if value:
                text = text.replace(value, "***")
        return text

    def __str__(self) -> str:
        return self.uri

    def __fspath__(self) -> str:
        raise TypeError(f"{self.uri} is on object storage, not a local path")

    def __repr__(self) -> str:
        endpoint = self._options.get("AWS_ENDPOINT_URL", "aws")
        return f"S3Root({self.uri!r}, endpoint={endpoint!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, S3Root) and other.uri == self.uri

    def __hash__(self) -> int:
        return hash(self.uri)


LakeRoot = Path | S3Root


def lake_root(root: LakeRoot | str, options: Mapping[str, str] | None = None) -> LakeRoot:
    """A Path for a local folder, an S3Root for `s3://…` (options default to the AWS environment)."""
    if isinstance(root, S3Root):
        return root
    if is_s3_uri(root):
        return S3Root(str(root), options)
    return Path(root)


def storage_options(path: LakeRoot) -> dict[str, str] | None:
    return path.storage_options if isinstance(path, S3Root) else None


def redact(text: str, path: LakeRoot) -> str:
    return path.redact(text) if isinstance(path, S3Root) else text


def open_table(path: LakeRoot, version: int | None = None) -> DeltaTable:
    return DeltaTable(str(path), version=version, storage_options=storage_options(path))


def read_frame(path: LakeRoot, version: int | None = None) -> pl.DataFrame:
    return pl.read_delta(str(path), version=version, storage_options=storage_options(path))


def write_table(path: LakeRoot, data: Any, **kwargs: Any) -> None:
    write_deltalake(str(path), data, storage_options=storage_options(path), **kwargs)


def is_delta_table(path: LakeRoot) -> bool:
    return DeltaTable.is_deltatable(str(path), storage_options=storage_options(path))
