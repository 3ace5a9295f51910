"""Resumable uploads (TUS 1.0) with a real client, tuspy, against `depot serve`: upload in pieces,
pause and resume on a new connection, survive `kill -9` of the server mid-upload, and the refusals
(wrong offset 409, checksum mismatch 460, over the size limit 413) with nothing visible until the
last byte."""

import base64
import hashlib
import io
import os
import tempfile
from pathlib import Path

import httpx
import pytest
from tusclient import client as tus
from tusclient.exceptions import TusCommunicationError
from tusclient.uploader import Uploader

from conftest import ROOT, Depot, _free_port

MIB = 1024 * 1024


class Sha256Uploader(Uploader):
    """tuspy's uploader with its Upload-Checksum in SHA-256 (its default is SHA-1)."""
    CHECKSUM_ALGORITHM_PAIR = ("sha256", hashlib.sha256)


@pytest.fixture()
def server():
    """A server of its own (restarted by the tests on the same data and port)."""
    binary = Path(os.environ.get("DEPOT_BIN", ROOT / ".build" / "debug" / "depot"))
    with tempfile.TemporaryDirectory(prefix="depot-tus-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        box = {"depot": Depot(binary, data, _free_port())}
        box["restart"] = lambda: box.update(depot=Depot(binary, data, box["depot"].port))
        yield box
        if box["depot"].process.poll() is None:
            box["depot"].stop()


def tus_client(depot, sub="alice"):
    token = depot.user_token(sub)
    return tus.TusClient(depot.storage_url + "/upload/resumable",
                         headers={"Authorization": f"Bearer {token}", "apikey": depot.anon_key}), token


def make_bucket(depot, name="videos"):
    depot.client(depot.service_key).create_bucket(name)


def test_upload_pause_resume_and_kill_9(server):
    depot = server["depot"]
    make_bucket(depot)
    body = os.urandom(3 * MIB)
    client, token = tus_client(depot)
    meta = {"bucketName": "videos", "objectName": "alice/film.bin", "contentType": "application/octet-stream"}
    up = Sha256Uploader(file_stream=io.BytesIO(body), client=client, chunk_size=512 * 1024, metadata=meta,
                        upload_checksum=True)
    up.upload(stop_at=MIB)
    assert up.offset == MIB
    user = depot.client(depot.anon_key, token)
    with pytest.raises(Exception):
        user.from_("videos").download("alice/film.bin")  # nothing visible before the last byte

    # The server dies (kill -9) after an acknowledged PATCH; a new one resumes where it was.
    depot.process.kill()
    depot.process.wait()
    server["restart"]()
    depot = server["depot"]
    client, token = tus_client(depot)
    resumed = Sha256Uploader(file_stream=io.BytesIO(body), client=client, url=up.url, chunk_size=512 * 1024,
                             upload_checksum=True)
    assert resumed.offset == MIB, "the acknowledged offset survived the crash"
    resumed.upload()
    got = depot.client(depot.anon_key, token).from_("videos").download("alice/film.bin")
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(body).hexdigest()
    info = depot.client(depot.anon_key, token).from_("videos").info("alice/film.bin")
    assert info["size"] == len(body)


def test_refusals(server):
    depot = server["depot"]
    make_bucket(depot)
    client, token = tus_client(depot)
    headers = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}

    def b64(s):
        return base64.b64encode(s.encode()).decode()

    # Over the server's limit (5 MiB in these tests): refused at creation, 413.
    big = Uploader(file_stream=io.BytesIO(b"x" * (5 * MIB + 1)), client=client,
                   metadata={"bucketName": "videos", "objectName": "alice/big.bin"})
    with pytest.raises(TusCommunicationError) as e:
        big.upload()
    assert e.value.status_code == 413

    created = httpx.post(depot.storage_url + "/upload/resumable", headers={
        **headers, "Upload-Length": "10", "Upload-Metadata": f"bucketName {b64('videos')},objectName {b64('alice/x.bin')}"})
    assert created.status_code == 201, created.text
    url = created.headers["Location"]
    patch = {**headers, "Content-Type": "application/offset+octet-stream"}
    wrong = httpx.patch(url, headers={**patch, "Upload-Offset": "5"}, content=b"01234")
    assert wrong.status_code == 409, wrong.text
    digest = base64.b64encode(hashlib.sha256(b"not this").digest()).decode()
    bad = httpx.patch(url, headers={**patch, "Upload-Offset": "0", "Upload-Checksum": f"sha256 {digest}"}, content=b"01234")
    assert bad.status_code == 460, bad.text
    assert httpx.head(url, headers=headers).headers["Upload-Offset"] == "0", "nothing of a refused PATCH is kept"
    # Another user does not see the upload at all.
    other = depot.user_token("bob")
    assert httpx.head(url, headers={**headers, "Authorization": f"Bearer {other}"}).status_code == 404
    # Terminated: gone.
    assert httpx.delete(url, headers=headers).status_code == 204
    assert httpx.head(url, headers=headers).status_code == 404
    listing = depot.client(depot.service_key).from_("videos").list("alice")
    assert listing == [], listing


def test_an_expired_upload_is_gone(server):
    """An upload not finished within `--resumable-ttl` (a day by default) is gone for tuspy too:
    its resume answers 404, nothing of it is visible, and `depot gc` removes its staged bytes.
    The day is made to pass by moving the record's expiry back while the server is stopped."""
    import json

    depot = server["depot"]
    make_bucket(depot)
    client, token = tus_client(depot)
    body = os.urandom(2 * MIB)
    up = Uploader(file_stream=io.BytesIO(body), client=client, chunk_size=512 * 1024,
                  metadata={"bucketName": "videos", "objectName": "alice/late.bin"})
    up.upload(stop_at=MIB)
    assert up.offset == MIB
    depot.stop()
    staged = depot.data / "resumable"
    records = list(staged.glob("*.json"))
    assert len(records) == 1 and len(list(staged.glob("*.bin"))) == 1
    record = json.loads(records[0].read_text())
    record["expiresAt"] -= 2 * 24 * 3600  # seconds since 2001, as Swift's JSONEncoder writes dates
    records[0].write_text(json.dumps(record))
    server["restart"]()
    depot = server["depot"]
    client, token = tus_client(depot)
    with pytest.raises(TusCommunicationError) as e:
        Uploader(file_stream=io.BytesIO(body), client=client, url=up.url, chunk_size=512 * 1024)
    assert e.value.status_code in (404, 410)
    patch = httpx.patch(up.url, content=body[MIB:], headers={
        "Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0", "Upload-Offset": str(MIB),
        "Content-Type": "application/offset+octet-stream"})
    assert patch.status_code in (404, 410), patch.text
    assert depot.client(depot.service_key).from_("videos").list("alice") == []
    depot.cli("gc", "--grace", "0")
    assert list(staged.iterdir()) == [], list(staged.iterdir())


def test_signed_upload_url_and_assets_api_entries(server):
    """A signed upload URL's token (`x-signature`, no caller token) and the Assets API's
    `/v1/uploads` both take a tuspy upload; a client that resumes a finished upload learns it is
    complete and sends nothing."""
    depot = server["depot"]
    make_bucket(depot)
    token = depot.user_token("alice")
    user = depot.client(depot.anon_key, token)
    signed = user.from_("videos").create_signed_upload_url("alice/clip.bin")
    body = os.urandom(2 * MIB + 5)
    client = tus.TusClient(depot.storage_url + "/upload/resumable/sign",
                           headers={"x-signature": signed["token"], "apikey": depot.anon_key})
    up = client.uploader(file_stream=io.BytesIO(body), chunk_size=MIB,
                         metadata={"bucketName": "videos", "objectName": "alice/clip.bin"})
    up.upload()
    assert "/upload/resumable/sign/" in up.url
    assert user.from_("videos").download("alice/clip.bin") == body
    again = client.uploader(file_stream=io.BytesIO(body), url=up.url, chunk_size=MIB)
    assert again.offset == len(body), "the finished upload says it is complete"
    again.upload()
    # The URL was single-use: a second upload with its token is refused.
    second = client.uploader(file_stream=io.BytesIO(body), chunk_size=MIB,
                             metadata={"bucketName": "videos", "objectName": "alice/clip.bin"})
    with pytest.raises(TusCommunicationError) as e:
        second.upload()
    assert e.value.status_code == 409

    auth = {"Authorization": f"Bearer {token}"}
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(MIB)
    assets = tus.TusClient(depot.base + "/v1/uploads", headers=auth)
    up = assets.uploader(file_stream=io.BytesIO(png), chunk_size=256 * 1024,
                         metadata={"jobId": "job-7", "contentType": "image/png", "suffix": "_orig",
                                   "checksum": hashlib.sha256(png).hexdigest()})
    up.upload()
    head = httpx.head(up.url, headers={**auth, "Tus-Resumable": "1.0.0"})
    path = head.headers["Depot-Path"]
    assert path.startswith("alice/job-7/") and path.endswith("_orig.png"), path
    asset = httpx.get(f"{depot.base}/v1/assets/{path}", headers=auth)
    assert asset.status_code == 200 and asset.json()["checksum"] == hashlib.sha256(png).hexdigest(), asset.text


SHARED = os.environ.get("DEPOT_TEST_S3_ENDPOINT") and os.environ.get("DEPOT_TEST_DATABASE_URL")


@pytest.mark.skipif(not SHARED and not os.environ.get("CI"),
                    reason="needs DEPOT_TEST_S3_ENDPOINT and DEPOT_TEST_DATABASE_URL (scripts/test sets both)")
def test_resume_on_another_server(tmp_path, monkeypatch):
    """Two servers over one PostgreSQL database and one S3 bucket (moto), as behind a load
    balancer: tuspy begins an upload on one, and resumes it on the other."""
    import re
    import subprocess
    import uuid

    import boto3

    endpoint = os.environ["DEPOT_TEST_S3_ENDPOINT"]
    key, secret = os.environ["DEPOT_TEST_S3_ACCESS_KEY"], os.environ["DEPOT_TEST_S3_SECRET_KEY"]
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key, aws_secret_access_key=secret,
                      region_name="us-east-1")
    if "depot-compat" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket="depot-compat")
    database = "compat_" + uuid.uuid4().hex[:10]
    admin = os.environ["DEPOT_TEST_DATABASE_URL"]
    subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {database}"], check=True)
    for name, value in {
        "DEPOT_DATABASE_URL": re.sub(r"/[^/?]+(\?|$)", f"/{database}\\1", admin, count=1),
        "DEPOT_BLOB_STORE": "s3", "DEPOT_S3_ENDPOINT": endpoint, "DEPOT_S3_BUCKET": "depot-compat",
        "DEPOT_S3_PREFIX": "compat-" + uuid.uuid4().hex[:8], "DEPOT_S3_ACCESS_KEY": key, "DEPOT_S3_SECRET_KEY": secret,
    }.items():
        monkeypatch.setenv(name, value)
    binary = Path(os.environ.get("DEPOT_BIN", ROOT / ".build" / "debug" / "depot"))
    servers = []
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            servers.append(Depot(binary, tmp_path / name, _free_port()))
        a, b = servers
        make_bucket(a)
        body = os.urandom(3 * MIB + 7)
        client_a, token = tus_client(a)
        meta = {"bucketName": "videos", "objectName": "alice/shared.bin", "contentType": "application/octet-stream"}
        up = Sha256Uploader(file_stream=io.BytesIO(body), client=client_a, chunk_size=512 * 1024, metadata=meta,
                            upload_checksum=True)
        up.upload(stop_at=MIB)
        assert up.offset == MIB
        client_b, _ = tus_client(b)
        on_b = up.url.replace(a.base, b.base)
        resumed = Sha256Uploader(file_stream=io.BytesIO(body), client=client_b, url=on_b, chunk_size=512 * 1024,
                                 upload_checksum=True)
        assert resumed.offset == MIB, "server B sees what server A acknowledged"
        resumed.upload()
        got = a.client(a.anon_key, token).from_("videos").download("alice/shared.bin")
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(body).hexdigest()
    finally:
        for server in servers:
            server.stop()
