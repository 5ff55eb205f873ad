"""A threaded HTTP server on 127.0.0.1 (ephemeral port) for download tests; never reaches another host."""

from __future__ import annotations

import http.server
import threading
from typing import Iterator


def serve(handler: type, **state) -> Iterator[http.server.ThreadingHTTPServer]:
    """Yield a running server whose attributes ``state`` (plus ``url``) the handler reads; shut down after."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    for key, value in state.items():
        setattr(srv, key, value)
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)
