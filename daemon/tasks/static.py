"""A static file server on 127.0.0.1 in a background thread (benchmark pages, MiniWoB++, the
bundled sites), with optional JSON endpoints beside the files."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

Api = Mapping[str, Callable[[dict[str, str]], object]]     # path → handler of the query


class _Handler(http.server.SimpleHTTPRequestHandler):
    api: Api = {}

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        handler = self.api.get(parts.path)
        if handler is None:
            return super().do_GET()
        try:
            status, body = 200, handler(dict(parse_qsl(parts.query)))
        except (KeyError, ValueError) as exc:       # a bad or missing parameter
            status, body = 400, {"error": str(exc)}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serve_directory(directory: Path, api: Api | None = None, port: int = 0) -> Iterator[str]:
    """Serve `directory` (and `api`'s endpoints) on `port` (0: a free one) for the duration;
    yields the base URL. OSError when the port is taken."""
    handler = functools.partial(type("Handler", (_Handler,), {"api": dict(api or {})}),
                                directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
