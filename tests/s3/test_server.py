"""The S3 server the suite runs against honours what the lake relies on: conditional writes."""

from __future__ import annotations

import pytest

from v6core.lake.s3store import s3_client


def test_server_honours_put_if_absent_and_if_match(s3_lake):
    client, key = s3_client(s3_lake), f"{s3_lake.key}/probe"
    etag = client.put_object(Bucket=s3_lake.bucket, Key=key, Body=b"1", IfNoneMatch="*")["ETag"]
    with pytest.raises(Exception) as lost:
        client.put_object(Bucket=s3_lake.bucket, Key=key, Body=b"2", IfNoneMatch="*")
    assert lost.value.response["Error"]["Code"] == "PreconditionFailed"
    with pytest.raises(Exception) as stale:
        client.put_object(Bucket=s3_lake.bucket, Key=key, Body=b"3", IfMatch='"0000"')
    assert stale.value.response["Error"]["Code"] == "PreconditionFailed"
    client.put_object(Bucket=s3_lake.bucket, Key=key, Body=b"4", IfMatch=etag)
    assert client.get_object(Bucket=s3_lake.bucket, Key=key)["Body"].read() == b"4"
