"""Folder operations with a user's token: storage3's remove() with a folder entry (Depot's
extension), and the folder move and delete jobs of /v1/folders, polled to their result."""

import time

import httpx

from conftest import PNG


def wait(depot, url, token):
    deadline = time.time() + 20
    while True:
        job = httpx.get(depot.base + url, headers={"Authorization": f"Bearer {token}"}).json()
        if job["state"] in ("succeeded", "dead") or time.time() > deadline:
            return job
        time.sleep(0.05)


def test_remove_move_and_delete_folders(depot, service):
    service.create_bucket("folders")
    token = depot.user_token("alice")
    alice = depot.client(depot.anon_key, token).from_("folders")
    for i in range(5):
        alice.upload(f"alice/f/{i}.png", PNG, {"content-type": "image/png"})
    alice.upload("alice/keep.png", PNG, {"content-type": "image/png"})
    removed = alice.remove(["alice/f/"])
    assert sorted(r["name"] for r in removed) == [f"alice/f/{i}.png" for i in range(5)]
    assert [e["name"] for e in alice.list("alice")] == ["keep.png"]

    for i in range(3):
        alice.upload(f"alice/a/{i}.png", PNG, {"content-type": "image/png"})
    auth = {"Authorization": f"Bearer {token}"}
    r = httpx.post(f"{depot.base}/v1/folders/move", headers=auth,
                   json={"bucket": "folders", "prefix": "alice/a/", "destination": "alice/b/"})
    assert r.status_code == 202 and r.headers["location"] == r.json()["url"]
    job = wait(depot, r.json()["url"], token)
    assert (job["state"], job["done"], job["skipped"], job["failed"]) == ("succeeded", 3, 0, 0)
    assert sorted(e["name"] for e in alice.list("alice/b")) == ["0.png", "1.png", "2.png"]
    assert alice.download("alice/b/1.png") == PNG

    # Another user's folder: refused at once, nothing queued or touched.
    bob = depot.user_token("bob")
    r = httpx.post(f"{depot.base}/v1/folders/delete", headers={"Authorization": f"Bearer {bob}"},
                   json={"bucket": "folders", "prefix": "alice/b/"})
    assert r.status_code == 403
    r = httpx.post(f"{depot.base}/v1/folders/delete", headers=auth, json={"bucket": "folders", "prefix": "alice/b/"})
    job = wait(depot, r.json()["url"], token)
    assert (job["state"], job["done"]) == ("succeeded", 3)
    assert [e["name"] for e in alice.list("alice")] == ["keep.png"]
    service.empty_bucket("folders")
    service.delete_bucket("folders")
