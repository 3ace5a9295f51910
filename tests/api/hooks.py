"""Schemathesis hooks for scripts/api-check (loaded through SCHEMATHESIS_HOOKS). They change how two
kinds of path parameter travel, and say how to make one kind of body, never what is checked.

1. Object names are `/`-separated and travel with their slashes (`/storage/v1/object/avatars/alice/me.png`),
   which an OpenAPI path parameter cannot say: schemathesis percent-encodes every path parameter, `/`
   included, and Depot refuses an encoded slash in a name (400 `invalid_path`, as documented). Sending
   the slashes as they are lets generated and example names reach the objects behind them, so that
   successful answers are checked too. A `%` that was in the generated value itself stays encoded
   (`%25`), so nothing else changes.

2. Bucket ids that other routes take as their first segment (the `not` of the `ObjectBucket`
   parameter): `GET /storage/v1/object/sign/x/y` is a signed download, `DELETE /storage/v1/object/copy`
   no route at all. A request naming one is a request to another operation (described there), not to
   the generic object routes; negative cases aim at them on purpose. They go to a bucket of another
   name instead.

3. TUS PATCH bodies (`application/offset+octet-stream`, a media type schemathesis does not know):
   bytes, up to 64 KiB.
"""

from urllib.parse import unquote

import schemathesis
from hypothesis import strategies as st

schemathesis.openapi.media_type("application/offset+octet-stream", st.binary(max_size=64 * 1024))

OBJECT_NAME_PARAMETERS = ("path",)
RESERVED_BUCKETS = {"sign", "public", "authenticated", "info", "upload", "list", "list-v2", "move", "copy"}
GENERIC_OBJECT_ROUTES = ("/storage/v1/object/{bucket}", "/storage/v1/object/info/{bucket}")


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    params = case.path_parameters
    if not params:
        return
    for name in OBJECT_NAME_PARAMETERS:
        value = params.get(name)
        if isinstance(value, str):
            params[name] = value.replace("%2F", "/").replace("%2f", "/")
    bucket = params.get("bucket")
    if case.operation.path.startswith(GENERIC_OBJECT_ROUTES) and isinstance(bucket, str) \
            and unquote(bucket) in RESERVED_BUCKETS:
        params["bucket"] = bucket + "-bucket"
