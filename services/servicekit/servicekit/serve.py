"""Start a service: ``python -m servicekit.serve auth_service``.

The one start command used by the service image (services/Dockerfile), the native
runner and k8s. It runs ``<package>.main:create_app`` under uvicorn (uvloop, httptools
with its own 400 in the JSON error shape, no access log). ``PORT``, ``HOST`` and
``WEB_CONCURRENCY`` come from the environment.
"""

from __future__ import annotations

import os
import sys

import uvicorn

from servicekit.protocol import JsonErrorHttpToolsProtocol

DEFAULT_PORTS = {
    "auth_service": 8001,
    "movie_service": 8002,
    "booking_service": 8003,
    "payment_service": 8004,
    "notification_service": 8005,
}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in DEFAULT_PORTS:
        sys.stderr.write(f"usage: python -m servicekit.serve {{{'|'.join(DEFAULT_PORTS)}}}\n")
        return 2
    package = argv[0]
    uvicorn.run(
        f"{package}.main:create_app",
        factory=True,
        host=os.environ.get("HOST", "0.0.0.0"),
        port=int(os.environ.get("PORT", DEFAULT_PORTS[package])),
        workers=int(os.environ.get("WEB_CONCURRENCY", "1")),
        loop="uvloop",
        http=JsonErrorHttpToolsProtocol,
        access_log=False,
        log_config=None,
        proxy_headers=True,
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        timeout_graceful_shutdown=10,
        # Longer than the gateway's upstream keepalive_timeout (60 s): the side that closes
        # an idle connection must be NGINX. If uvicorn closed it (its default is 5 s) while
        # a request was already on the wire, NGINX got a reset and answered 502 (seen under
        # bursts: a busy event loop runs the idle timer late, after the request arrived).
        timeout_keep_alive=75,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
