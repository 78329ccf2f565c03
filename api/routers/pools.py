"""/v1/pools: per pool, its blocks and share of blocks per day, its labelled addresses and how
many of them the model flags; /v1/candidates: flagged addresses that no label explains."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query, Request

from api.app import ApiError, lineage, snapshot_for
from api.routers.addresses import _csv, _wants_csv
from api.schemas import CandidatesResponse, PoolDetail, PoolsResponse, Problem
from api.store import Snapshot

router = APIRouter(prefix="/v1", tags=["pools"])
CANDIDATE_COLUMNS = ("address", "score", "first_flagged", "scored_day", "model_version", "profile",
                     "anomaly_score", "is_anomaly")


def _pool(row: dict, days: list[dict]) -> dict:
    return {"pool_id": row["pool_id"], "pool_name": row["pool_name"], "blocks": row["blocks"],
            "labelled_addresses": row["labelled"], "predicted_addresses": row["labelled_predicted"],
            "days": [{"day": d["day"], "blocks": d["blocks"], "share": d["share"]} for d in days]}


@router.get("/pools", response_model=PoolsResponse, summary="Every pool: blocks and share per day, addresses")
def list_pools(snap: Snapshot = Depends(snapshot_for)):
    by_pool: dict[int, list[dict]] = {}
    for d in snap.pool_days():
        by_pool.setdefault(d["pool_id"], []).append(d)
    total, _ = snap.candidates(0, 0, 0.0)
    return {"pools": [_pool(p, by_pool.get(p["pool_id"], [])) for p in snap.pools()],
            "unattributed_predicted": total, "lineage": lineage(snap)}


@router.get("/pools/{pool_id}", response_model=PoolDetail, responses={404: {"model": Problem}},
            summary="One pool, with its labelled addresses and their scores")
def get_pool(pool_id: int = Path(ge=-1, le=2 ** 31, description="The pools list's id (-1: no pool found)"),
             limit: int = Query(1000, ge=1, le=10_000), snap: Snapshot = Depends(snapshot_for)):
    row = snap.pool(pool_id)
    if row is None:
        raise ApiError(404, "not_found", f"no pool {pool_id} mined a block or has a labelled address up to {snap.day}",
                       what_to_do="list the pools with GET /v1/pools")
    addresses = [{**a, "is_pool": a.pop("label")} for a in snap.pool_addresses(pool_id, limit)]
    return {**_pool(row, snap.pool_days(pool_id)), "addresses": addresses}


@router.get("/candidates", response_model=CandidatesResponse,
            responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV (Accept: text/csv)"}},
            summary="Addresses scored at or above the threshold that no label explains, highest first")
def candidates(request: Request, limit: int = Query(100, ge=1, le=100_000), offset: int = Query(0, ge=0, le=10 ** 9),
               min_score: float = Query(0.0, ge=0.0, le=1.0), format: str | None = Query(None, pattern="^(json|csv)$"),
               snap: Snapshot = Depends(snapshot_for)):
    total, rows = snap.candidates(limit, offset, min_score)
    if _wants_csv(request, format):
        return _csv(rows, CANDIDATE_COLUMNS, {"X-Snapshot-Day": snap.day, "X-Total-Count": str(total)})
    return {"total": total, "limit": limit, "offset": offset, "candidates": rows, "lineage": lineage(snap)}
