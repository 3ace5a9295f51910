"""User tokens signed with asymmetric keys (Supabase Auth's RS256 / ES256 / EdDSA, published as a
JWKS), made with PyJWT and used by storage3 as supabase-py would: the server reads the JWKS with
--jwks and takes `sub` from them as from HS256 tokens."""
import time

import httpx
import jwt
import pytest

from conftest import PNG, api_error


def user_token(depot, alg: str, sub: str, kid: str | None = None, exp: int | None = None) -> str:
    key_id, private = depot.signers[alg]
    now = int(time.time())
    claims = {"sub": sub, "role": "authenticated", "aud": "authenticated", "iat": now, "exp": exp or now + 600}
    return jwt.encode(claims, private, algorithm=alg, headers={"kid": kid or key_id})


@pytest.fixture(scope="module")
def jwks_bucket(service):
    service.create_bucket("jwks-docs", options={"public": False})
    return "jwks-docs"


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_each_algorithm_works_for_its_user(depot, jwks_bucket, alg):
    user = f"user-{alg.lower()}"
    files = depot.client(depot.anon_key, user_token(depot, alg, user)).from_(jwks_bucket)
    files.upload(f"{user}/a.png", PNG, {"content-type": "image/png"})
    assert files.download(f"{user}/a.png") == PNG
    assert [o["name"] for o in files.list(user)] == ["a.png"]
    # the tenant rule holds: another user's folder is out of reach
    e = api_error(lambda: files.upload("someone-else/a.png", PNG, {"content-type": "image/png"}))
    assert str(e.status) in ("400", "403")


def test_wrong_asymmetric_tokens_are_refused(depot, jwks_bucket):
    def refused(token: str) -> str:
        r = httpx.post(f"{depot.storage_url}/object/{jwks_bucket}/mallory/x.png", content=PNG,
                       headers={"apikey": depot.anon_key, "Authorization": f"Bearer {token}", "content-type": "image/png"})
        assert r.status_code == 400 and r.json()["statusCode"] == "403", r.text
        return r.json()["message"]

    assert "not in the JWKS" in refused(user_token(depot, "ES256", "mallory", kid="rotated-away"))
    # an RS256 token presented under the EC key's kid: the key decides the algorithm
    ec_kid, _ = depot.signers["ES256"]
    assert "signs with ES256" in refused(user_token(depot, "RS256", "mallory", kid=ec_kid))
    assert "expired" in refused(user_token(depot, "EdDSA", "mallory", exp=int(time.time()) - 60))
    files = depot.client(depot.service_key).from_(jwks_bucket)
    assert files.list("mallory") == []
