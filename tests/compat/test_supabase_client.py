"""supabase-py's own entry point, `create_client(url, key)`, pointed at Depot: the URL is the
server's root, and the client talks to `<url>/storage/v1` by itself."""

from supabase import create_client

from conftest import PNG


def test_create_client_with_the_service_key(depot):
    client = create_client(depot.base, depot.service_key)
    client.storage.create_bucket("from-supabase-py", options={"public": True})
    bucket = client.storage.from_("from-supabase-py")
    bucket.upload("hello/world.png", PNG, {"content-type": "image/png"})
    assert bucket.download("hello/world.png") == PNG
    assert [f["name"] for f in bucket.list("hello")] == ["world.png"]
    assert bucket.get_public_url("hello/world.png") == f"{depot.base}/storage/v1/object/public/from-supabase-py/hello/world.png"
    bucket.remove(["hello/world.png"])
    client.storage.delete_bucket("from-supabase-py")
