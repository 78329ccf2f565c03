"""/v1/model: the champion that scored the snapshot, the latest challenger, their metrics and
the champion's report (its plots served from the snapshot)."""
from __future__ import annotations

import re

from fastapi import APIRouter, Depends, Path
from fastapi.responses import FileResponse

from api.app import ApiError, lineage, snapshot_for
from api.schemas import ModelResponse, Problem
from api.store import Snapshot

router = APIRouter(prefix="/v1", tags=["model"])
_NAME = r"^[A-Za-z0-9._-]{1,100}$"


def _summary(snap: Snapshot, metadata: dict) -> dict:
    version = metadata["version"]
    plots = sorted(name for name in re.findall(r"!\[[^\]]*\]\(([^)\s]+\.png)\)", _report(snap, version) or "")
                   if snap.model_file(version, name))
    metrics = metadata.get("metrics", {})
    return {"version": version, "trained_for": metadata.get("trained_for"), "estimator": metadata.get("model"),
            "threshold": metrics.get("threshold", metadata.get("threshold")), "metrics": metrics,
            "calibration": metadata.get("calibration"),
            "promotion": metadata.get("promotion"), "data": metadata.get("data"),
            "plots": [f"/v1/model/files/{version}/{name}" for name in plots]}


def _report(snap: Snapshot, version: str) -> str | None:
    file = snap.model_file(version, "report.md")
    return file.read_text() if file else None


@router.get("/model", response_model=ModelResponse, summary="The champion and the latest challenger")
def model(snap: Snapshot = Depends(snapshot_for)):
    champion = snap.model_metadata(snap.meta["model_version"])
    if champion is None:
        raise ApiError(404, "not_found",
                       f"the snapshot of {snap.day} holds no metadata of {snap.meta['model_version']}",
                       what_to_do="re-publish the day's snapshot")
    challenger = snap.model_metadata(snap.meta.get("challenger_version"))
    against = (challenger or {}).get("champion") or {}
    comparison = ({"champion": against["metrics"], "challenger": against["challenger_metrics"]}
                  if "metrics" in against and "challenger_metrics" in against else None)
    return {"champion": _summary(snap, champion), "challenger": _summary(snap, challenger) if challenger else None,
            "comparison": comparison, "report_markdown": _report(snap, champion["version"]), "lineage": lineage(snap)}


@router.get("/model/files/{version}/{name}", responses={404: {"model": Problem}},
            summary="A file of a model's report (its plots)")
def model_file(version: str = Path(pattern=_NAME), name: str = Path(pattern=_NAME),
               snap: Snapshot = Depends(snapshot_for)):
    file = snap.model_file(version, name)
    if file is None or not name.endswith((".png", ".md")):
        raise ApiError(404, "not_found", f"no report file {name!r} of model {version!r} in the snapshot of {snap.day}")
    return FileResponse(file)
