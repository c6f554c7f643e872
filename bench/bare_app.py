"""The reference point: a bare FastAPI endpoint returning a fixed JSON body.

It runs under the same server settings as ``etomcrm serve`` (the same ``uvicorn.run``
call with an app factory: 2 workers, no access log, uvicorn's default ``loop="auto"`` and
``http="auto"``, so uvloop and httptools as for etomcrm) and answers the same kind of
request: ``GET /bare/customer/{id}`` with a bearer header, driven by the same wrk script
as the real ``GET /customer/{id}``.

Its body is exactly the bytes of a real etomcrm answer to ``GET /customer/{id}``
(``BENCH_BARE_BODY_FILE``, written by the runner), so both send the same size.

Run: ``BENCH_BARE_BODY_FILE=... python bench/bare_app.py --port 8100 --workers 2``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import Response


def create_app() -> FastAPI:
    body = Path(os.environ["BENCH_BARE_BODY_FILE"]).read_bytes()
    app = FastAPI(title="bare")

    @app.get("/bare/customer/{id}")
    async def bare(id: str) -> Response:
        return Response(body, media_type="application/json")

    @app.get("/health")
    async def health() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="Serve the bare reference endpoint.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    # The same call as etomcrm.cli.serve, apart from the application.
    uvicorn.run(
        "bare_app:create_app",
        factory=True,
        app_dir=str(Path(__file__).resolve().parent),
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=args.access_log,
    )


if __name__ == "__main__":
    main()
