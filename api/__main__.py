"""`python -m api`: the API and pages on uvicorn, at HOST:PORT (127.0.0.1:8000 by default)."""
from __future__ import annotations

import logging
import sys

import uvicorn

from api.app import create_app
from api.settings import Settings, SettingsError


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"api: {exc}", file=sys.stderr)
        return 2
    base = f"http://{settings.host}:{settings.port}"
    print(f"api: serving the snapshots of {settings.bucket}/serving", flush=True)
    for what, path in (("search", "/"), ("pools", "/pools"), ("live", "/live"), ("model", "/model"), ("API docs", "/docs"),
                       ("readiness", "/readyz")):
        print(f"    {what:<10} {base}{path}", flush=True)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning",
                access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
