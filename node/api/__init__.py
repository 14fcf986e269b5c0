"""The node's HTTP JSON API.

* :mod:`.server` — the Starlette app (routes, auth, errors) served by Hypercorn's trio worker
* :mod:`.views` — the JSON documents, built from the store and the committed state
* :mod:`.events` — the server-sent-events stream of new blocks
* :mod:`.openapi` — the OpenAPI description (``docs/openapi.json``)
"""

from .server import make_app, serve_api

__all__ = ["make_app", "serve_api"]
