"""/healthz (the process answers) and /readyz (a snapshot is loaded: which day, which model)."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import ORJSONResponse

from api.schemas import Ready
from api.store import SnapshotStore

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz():
    return {"status": "ok"}


@router.get("/readyz", response_model=Ready, responses={503: {"model": Ready}},
            summary="Readiness: a snapshot is loaded (names its day and model version)")
async def readyz(request: Request):
    store: SnapshotStore = request.app.state.store
    snap = store.current
    body = {"ready": snap is not None, "switches": store.switches, "last_error": store.last_error}
    if snap is None:
        return ORJSONResponse(body, status_code=503)
    return {**body, "snapshot_day": snap.day, "snapshot_version": snap.version,
            "model_version": snap.meta["model_version"]}
