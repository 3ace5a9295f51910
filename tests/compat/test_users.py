"""The app flow: the anon key and users' session JWTs (role authenticated, sub = user id),
through storage3. Depot's default policy: a user may write, read, sign, move and delete only
under `{sub}/`; anon reads public buckets only; buckets are managed with the service key."""

import httpx
import pytest

from conftest import api_error, PNG


@pytest.fixture(scope="module")
def setup(depot, service):
    service.create_bucket("avatars", options={"public": True, "allowed_mime_types": ["image/png"]})
    service.create_bucket("private-docs")
    alice_token, bob_token = depot.user_token("alice"), depot.user_token("bob")
    return {
        "alice": depot.client(depot.anon_key, alice_token),
        "bob": depot.client(depot.anon_key, bob_token),
        "alice_token": alice_token,
    }


def test_user_writes_only_under_own_id(setup, service):
    alice = setup["alice"]
    docs = alice.from_("private-docs")
    assert docs.upload("alice/notes.txt", b"mine", {"content-type": "text/plain"}).full_path == "private-docs/alice/notes.txt"
    assert docs.download("alice/notes.txt") == b"mine"

    e = api_error(lambda: docs.upload("bob/notes.txt", b"not mine", {"content-type": "text/plain"}))
    assert (str(e.status), e.code) == ("403", "Unauthorized")
    e = api_error(lambda: docs.upload("notes.txt", b"root", {"content-type": "text/plain"}))
    assert str(e.status) == "403"
    assert service.from_("private-docs").exists("bob/notes.txt") is False
    assert service.from_("private-docs").exists("notes.txt") is False


def test_users_cannot_see_each_other(setup, service):
    alice, bob = setup["alice"].from_("private-docs"), setup["bob"].from_("private-docs")
    service.from_("private-docs").upload("bob/secret.txt", b"bob's", {"content-type": "text/plain"})
    alice_files = setup["alice"].from_("private-docs")
    alice_files.upload("alice/a.txt", b"a", {"content-type": "text/plain", "upsert": "true"})

    # listing the root shows only what the caller may read
    assert [e["name"] for e in alice.list()] == ["alice"]
    assert [e["name"] for e in bob.list()] == ["bob"]
    assert bob.list("alice") == []

    assert bob.exists("alice/a.txt") is False
    e = api_error(lambda: bob.download("alice/a.txt"))
    assert str(e.status) == "404"
    e = api_error(lambda: bob.create_signed_url("alice/a.txt", 60))
    assert str(e.status) == "404"
    assert bob.create_signed_urls(["alice/a.txt"], 60)[0]["signedURL"] is None

    # remove skips what the caller may not delete
    assert bob.remove(["alice/a.txt"]) == []
    assert alice.download("alice/a.txt") == b"a"
    # move out of one's own folder is refused, within it allowed
    e = api_error(lambda: alice.move("alice/a.txt", "bob/a.txt"))
    assert str(e.status) == "403"
    alice.move("alice/a.txt", "alice/b.txt")
    assert alice.download("alice/b.txt") == b"a"


def test_user_signed_urls_and_signed_uploads(setup, depot):
    files = setup["alice"].from_("private-docs")
    files.upload("alice/report.txt", b"report", {"content-type": "text/plain"})
    url = files.create_signed_url("alice/report.txt", 30)["signedURL"]
    assert httpx.get(url).content == b"report"

    signed = files.create_signed_upload_url("alice/upload.txt")
    files.upload_to_signed_url("alice/upload.txt", signed["token"], b"direct", {"content-type": "text/plain"})
    assert files.download("alice/upload.txt") == b"direct"
    e = api_error(lambda: files.create_signed_upload_url("bob/upload.txt"))
    assert str(e.status) == "403"


def test_user_cannot_manage_buckets(setup):
    alice = setup["alice"]
    assert alice.list_buckets() == []
    e = api_error(lambda: alice.create_bucket("mine"))
    assert str(e.status) == "403"
    e = api_error(lambda: alice.get_bucket("avatars"))
    assert str(e.status) == "404"
    e = api_error(lambda: alice.delete_bucket("avatars"))
    assert str(e.status) == "403"
    e = api_error(lambda: alice.empty_bucket("avatars"))
    assert str(e.status) == "403"


def test_anon_reads_public_buckets_only(setup, anon, depot):
    setup["alice"].from_("avatars").upload("alice/me.png", PNG, {"content-type": "image/png"})
    avatars = anon.from_("avatars")
    assert avatars.download("alice/me.png") == PNG
    assert avatars.info("alice/me.png")["size"] == len(PNG)
    assert httpx.get(avatars.get_public_url("alice/me.png")).content == PNG

    e = api_error(lambda: anon.from_("private-docs").download("alice/report.txt"))
    assert str(e.status) == "404"
    e = api_error(lambda: avatars.upload("anon.png", PNG, {"content-type": "image/png"}))
    assert str(e.status) == "403"
    assert anon.list_buckets() == []
    assert avatars.list() == []


def test_public_bucket_checks_the_bytes(setup):
    avatars = setup["alice"].from_("avatars")
    e = api_error(lambda: avatars.upload("alice/not-really.png", b"<html>hi</html>", {"content-type": "image/png"}))
    assert str(e.status) == "415"
    assert avatars.exists("alice/not-really.png") is False


def test_bad_or_expired_jwt(depot):
    forged = depot.client(depot.anon_key, setup_forged_token())
    e = api_error(lambda: forged.from_("private-docs").upload("alice/x.txt", b"x", {"content-type": "text/plain"}))
    assert (str(e.status), e.code) == ("403", "Unauthorized")
    r = httpx.get(f"{depot.storage_url}/bucket", headers={"Authorization": "Bearer not-a-jwt"})
    body = r.json()
    assert r.status_code == 400 and body["statusCode"] == "403" and isinstance(body["message"], str)


def test_apikey_header_alone_authenticates(depot):
    r = httpx.get(f"{depot.storage_url}/bucket", headers={"apikey": depot.service_key})
    assert r.status_code == 200 and any(b["name"] == "avatars" for b in r.json())


def setup_forged_token() -> str:
    import base64, json
    def b64(d): return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    return b64({"alg": "HS256", "typ": "JWT"}) + "." + b64({"sub": "alice", "role": "authenticated", "exp": 4102444800}) + ".c2lnbmF0dXJl"


def test_health_as_upstream(depot):
    """upstream's /health (under /storage/v1 behind its gateway): any valid key, `{"healthy": true}`."""
    ok = httpx.get(f"{depot.storage_url}/health", headers={"apikey": depot.anon_key, "Authorization": f"Bearer {depot.anon_key}"})
    assert ok.status_code == 200 and ok.json() == {"healthy": True}
    # without one: upstream's AccessDenied shape (HTTP 400, statusCode "403"), as every Storage route
    refused = httpx.get(f"{depot.storage_url}/health")
    assert refused.status_code == 400 and refused.json()["statusCode"] == "403"
