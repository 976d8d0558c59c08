"""Where a lake lives: a local folder (the default) or an S3-compatible prefix (`s3://bucket/prefix`).

Credentials and endpoint come from the standard AWS environment (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, AWS_ENDPOINT_URL) or are passed in; they
are kept out of repr and never logged. Commits on S3 use the store's conditional put
(put-if-absent), so concurrent writers never overwrite each other's commit.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import polars as pl
from deltalake import DeltaTable

from v6core.lake.schemas import is_table

_ENV_OPTIONS = {
    "AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN": "AWS_SESSION_TOKEN", "AWS_REGION": "AWS_REGION",
    "AWS_DEFAULT_REGION": "AWS_REGION", "AWS_ENDPOINT_URL": "AWS_ENDPOINT_URL",
}


def s3_options(endpoint_url: str | None = None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """deltalake storage options for S3 from the AWS environment (and an explicit endpoint)."""
    env = os.environ if environ is None else environ
    options = {option: env[name] for name, option in _ENV_OPTIONS.items() if env.get(name)}
    if endpoint_url:
        options["AWS_ENDPOINT_URL"] = endpoint_url
    endpoint = options.get("AWS_ENDPOINT_URL", "")
    if endpoint:                                  # MinIO, R2, moto: path-style addressing
        options["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = "false"
        if endpoint.startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
    options.setdefault("AWS_REGION", "us-east-1")
    options["aws_conditional_put"] = "etag"      # commits are put-if-absent: no lost commit
    return options


@dataclass(slots=True, frozen=True)
class LakeLocation:
    uri: str                                      # a local folder or s3://bucket/prefix
    storage_options: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, root: Path | str | LakeLocation, storage_options: Mapping[str, str] | None = None) -> LakeLocation:
        if isinstance(root, LakeLocation):
            return root
        text = str(root)
        scheme = urlparse(text).scheme
        if scheme in ("s3", "s3a"):
            return cls(text.rstrip("/"), dict(storage_options) if storage_options is not None else s3_options())
        if scheme == "file":
            text = urlparse(text).path
        return cls(str(Path(text)), {})

    @property
    def local(self) -> Path | None:
        """The folder of a local lake; None on object storage."""
        return None if "://" in self.uri else Path(self.uri)

    def table_uri(self, name: str) -> str:
        local = self.local
        return str(local / name) if local is not None else f"{self.uri}/{name}"

    def _options(self) -> dict[str, str] | None:
        return dict(self.storage_options) or None

    def is_table(self, name: str) -> bool:
        local = self.local
        if local is not None:
            return is_table(local / name)
        return DeltaTable.is_deltatable(self.table_uri(name), storage_options=self._options())

    def open(self, name: str, version: int | None = None) -> DeltaTable:
        return DeltaTable(self.table_uri(name), version=version, storage_options=self._options())

    def read(self, name: str, version: int | None = None) -> pl.DataFrame:
        return pl.read_delta(self.table_uri(name), version=version, storage_options=self._options())

    def __str__(self) -> str:
        return self.uri
