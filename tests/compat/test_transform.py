"""Image transformations through storage3, as Supabase's docs show them: download, get_public_url
and create_signed_url with `transform` return the transformed image (Depot's render API)."""

import struct
import zlib

import httpx
import pytest

from conftest import api_error


def png(width: int, height: int) -> bytes:
    """A real RGB PNG (a gradient), written without an imaging library."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"".join(bytes((x * 255 // width, y * 255 // height, 128)) for x in range(width)) for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def pictures(depot, service):
    service.create_bucket("pictures", options={"public": True})
    service.create_bucket("private-pictures")
    alice = depot.client(depot.anon_key, depot.user_token("alice"))
    for bucket in ("pictures", "private-pictures"):
        alice.from_(bucket).upload("alice/photo.png", png(640, 480), {"content-type": "image/png"})
    return alice


def test_download_with_transform(pictures):
    files = pictures.from_("private-pictures")
    assert png_size(files.download("alice/photo.png")) == (640, 480)
    assert png_size(files.download("alice/photo.png", {"transform": {"width": 100, "height": 50}})) == (100, 50)
    contained = files.download("alice/photo.png", {"transform": {"width": 100, "height": 50, "resize": "contain"}})
    assert png_size(contained) == (67, 50)
    assert png_size(files.download("alice/photo.png", {"transform": {"width": 160, "format": "origin", "quality": 60}})) == (160, 120)


def test_public_url_with_transform(pictures, anon):
    url = pictures.from_("pictures").get_public_url("alice/photo.png", {"transform": {"width": 200, "height": 200}})
    assert "/storage/v1/render/image/public/pictures/alice/photo.png?" in url
    r = httpx.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert png_size(r.content) == (200, 200)
    # A browser that takes WebP gets WebP.
    r = httpx.get(url, headers={"Accept": "image/webp,*/*"})
    assert r.headers["content-type"] == "image/webp" and r.content[8:12] == b"WEBP"
    assert r.headers["vary"] == "Accept"


def test_signed_url_with_transform(pictures):
    files = pictures.from_("private-pictures")
    signed = files.create_signed_url("alice/photo.png", 60, {"transform": {"width": 40, "height": 30}})
    url = signed["signedURL"]
    assert "/storage/v1/render/image/sign/private-pictures/alice/photo.png?token=" in url
    r = httpx.get(url)
    assert r.status_code == 200 and png_size(r.content) == (40, 30)
    # The transformation is the token's: the query cannot change it.
    assert png_size(httpx.get(url + "&width=600&height=600").content) == (40, 30)
    # A plain signed URL still serves the original.
    plain = files.create_signed_url("alice/photo.png", 60)["signedURL"]
    assert png_size(httpx.get(plain).content) == (640, 480)


def test_transform_errors(pictures, depot):
    files = pictures.from_("private-pictures")
    e = api_error(lambda: files.create_signed_url("alice/photo.png", 60, {"transform": {"width": 9000}}))
    assert str(e.status) == "400" and "width must be an integer from 1 to 2500" in e.message
    e = api_error(lambda: files.create_signed_url("alice/photo.png", 60, {"transform": {"format": "avif"}}))
    assert str(e.status) == "415"
    # Another tenant's image is not found, transformed or not.
    bob = depot.client(depot.anon_key, depot.user_token("bob")).from_("private-pictures")
    e = api_error(lambda: bob.create_signed_url("alice/photo.png", 60, {"transform": {"width": 10}}))
    assert str(e.status) == "404"
