"""The API's settings, read once from the environment (one object, handed to the app).

| variable | default | what |
|---|---|---|
| `POOL_CLASSIFIER_TARGET`, `…_DATA_DIR`, `…_BUCKET` | local, data/ | where the bucket is (the pipeline's target) |
| `POOL_API_BUCKET` | the target's bucket | read the snapshots of this bucket instead |
| `HOST`, `PORT` | 127.0.0.1, 8000 | where uvicorn listens (Cloud Run sets PORT; set HOST=0.0.0.0 there) |
| `POOL_API_POLL_SECONDS` | 2 | how often the snapshot pointer is read |
| `POOL_API_KEY` | none | the key every /v1 request must carry (`X-API-Key`); Cloud Run injects it from Secret Manager |
| `POOL_API_KEY_SECRET` | none | or: the Secret Manager secret holding it (`projects/P/secrets/S/versions/latest`) |
| `POOL_API_REQUIRE_KEY` | on for the gcp target | refuse to start without a key |
| `POOL_API_CACHE_DIR` | $TMPDIR/pool-api-cache | where snapshots of a gs:// bucket are copied |
"""
from __future__ import annotations

import os
from dataclasses import dataclass


class SettingsError(RuntimeError):
    """The environment does not describe a usable API (e.g. gcp without a key)."""


def _secret(name: str) -> str:
    """The latest value of a Secret Manager secret (the gcp deployment's key)."""
    from google.cloud import secretmanager

    if "/versions/" not in name:
        name = f"{name}/versions/latest"
    response = secretmanager.SecretManagerServiceClient().access_secret_version(name=name)
    return response.payload.data.decode("utf-8").strip()


@dataclass(frozen=True)
class Settings:
    bucket: str
    host: str = "127.0.0.1"
    port: int = 8000
    poll_seconds: float = 2.0
    api_key: str | None = None
    cache_dir: str | None = None

    @classmethod
    def from_env(cls, env: dict | None = None) -> "Settings":
        env = os.environ if env is None else env
        bucket = env.get("POOL_API_BUCKET")
        if not bucket:
            from pool_classifier.targets import current_target

            bucket = current_target().bucket
        key = env.get("POOL_API_KEY") or None
        if not key and env.get("POOL_API_KEY_SECRET"):
            key = _secret(env["POOL_API_KEY_SECRET"])
        gcp = env.get("POOL_CLASSIFIER_TARGET", "local") == "gcp"
        require = env.get("POOL_API_REQUIRE_KEY", "on" if gcp else "off").lower() in ("on", "1", "true", "yes")
        if require and not key:
            raise SettingsError("the API requires a key here (POOL_API_REQUIRE_KEY, on for the gcp target): set "
                                "POOL_API_KEY (Cloud Run: --set-secrets POOL_API_KEY=<secret>:latest) or "
                                "POOL_API_KEY_SECRET=projects/<p>/secrets/<s>")
        return cls(
            bucket=bucket,
            host=env.get("HOST", "127.0.0.1"),
            port=int(env.get("PORT", "8000")),
            poll_seconds=float(env.get("POOL_API_POLL_SECONDS", "2")),
            api_key=key,
            cache_dir=env.get("POOL_API_CACHE_DIR") or None,
        )
