"""/v1/addresses: one address's latest score and what explains it, its score history, and
batches of up to 1,000 (JSON, or CSV with `Accept: text/csv`)."""
from __future__ import annotations

import csv
import io
import json

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import ORJSONResponse, Response

from api import addresses as checks
from api.app import AS_OF, MAX_BODY_BYTES, ApiError, lineage, snapshot_for
from api.schemas import MAX_BATCH, AddressHistory, AddressScore, LookupResponse, Problem
from api.store import Snapshot

router = APIRouter(prefix="/v1", tags=["addresses"])

ERRORS = {
    404: {"model": Problem, "description": "Never seen in the data (the detail says since when it runs)"},
    422: {"model": Problem, "description": "Not a mainnet address: malformed, or what it is instead"},
}
CSV_COLUMNS = ("address", "status", "score", "is_pool", "threshold", "known_pool", "pools", "profile",
               "anomaly_score", "first_seen", "last_seen", "first_flagged", "scored_day", "model_version", "problem")


def _check(address: str) -> checks.Address:
    try:
        return checks.parse(address)
    except checks.AddressError as exc:
        if exc.kind == "malformed":
            raise ApiError(422, "malformed_address", exc.message, kind=exc.kind,
                           what_to_do="give a mainnet address: base58check (1…, 3…), bech32/bech32m (bc1…), "
                                      "or the dataset's nonstandard<40 hex> form") from None
        raise ApiError(422, "not_an_address", exc.message, kind=exc.kind,
                       what_to_do="look up a mainnet address (1…, 3…, bc1…)") from None


def _not_found(snap: Snapshot, address: str) -> ApiError:
    return ApiError(404, "not_found", f"{address} was never seen: no transaction of it in the data, which runs "
                    f"from {snap.meta['first_day']} to {snap.day}",
                    what_to_do="check the address, or ask again once later days are published")


def _contributions(raw) -> list[dict]:
    """The document's top contributions (a JSON list of {feature, value, contribution}); [] if none."""
    if not raw:
        return []
    try:
        items = json.loads(raw) if isinstance(raw, str) else raw
        return [{"feature": str(i["feature"]), "value": float(i["value"]), "contribution": float(i["contribution"])}
                for i in items]
    except (ValueError, TypeError, KeyError):
        return []


def _explanation(snap: Snapshot, row: dict, contributions: list[dict]) -> tuple[dict | None, str | None]:
    """(explanation, None) when the address has contributions, else (None, why not)."""
    found = row.get("explanation")
    if row.get("score") is None:
        return None, "not scored (no ordinary transaction: no features), so no contributions"
    if not found or not contributions:
        return None, (f"scored on {row.get('scored_day')} by a scoring batch that did not compute contributions; "
                      "they appear once the address is scored again")
    kind = snap.meta.get("raw_outputs", {}).get(row.get("model_version"))
    return {"raw_output": found["raw_output"], "raw_output_kind": kind, "bias": found["bias"],
            "rest": found["rest"]}, None


# How a model saved before calibration decides: its predict_proba at its threshold, nothing else known.
_UNCALIBRATED = {"calibration": None, "target_precision": None, "target_reached": None, "precision": None,
                 "recall": None}


def _answer(snap: Snapshot, checked: checks.Address, row: dict) -> dict:
    scored = row.get("score") is not None
    threshold = snap.meta["thresholds"].get(row.get("model_version"), snap.meta["threshold"])
    # A snapshot published before calibration has no decisions: the fields stay null.
    decided = {**_UNCALIBRATED, **snap.meta.get("decisions", {}).get(row.get("model_version"), {})}
    contributions = _contributions(row.get("contributions"))
    explanation, note = _explanation(snap, row, contributions)
    return {
        "address": checked.text,
        "address_kinds": list(checked.kinds),
        "scored": scored,
        "score": row.get("score"),
        "probability": row.get("score") if decided.get("calibration") else None,
        "decision": {**decided, "is_pool": row["score"] >= threshold, "threshold": threshold} if scored else None,
        "known_pool": bool(row["pools"]),
        "pools": row["pools"],
        "profile": ({"profile": row.get("profile"), "anomaly_score": row.get("anomaly_score"),
                     "is_anomaly": row.get("is_anomaly")} if scored else None),
        "contributions": contributions if explanation else [],
        "explanation": explanation,
        "contributions_note": note,
        "features": row["features"],
        "first_seen": row.get("first_seen"),
        "last_seen": row.get("last_seen"),
        "first_flagged": row.get("first_flagged"),
        "scored_day": row.get("scored_day"),
        "model_version": row.get("model_version"),
        "lineage": lineage(snap),
    }


@router.get("/addresses/{address}", response_model=AddressScore, responses=ERRORS,
            summary="The latest score of an address, its decision, pool, profile, features and lineage")
async def get_address(request: Request,
                      address: str = Path(description="A mainnet address key (comma-joined for bare multisig)"),
                      as_of: str | None = Query(None, pattern=AS_OF, description="Answer as of this UTC day")):
    snap = await snapshot_for(request, as_of)  # called, not Depends: a dependency costs ~15 % of a lookup
    # async and returned as is: a lookup is microseconds of work (the document index), so a
    # thread-pool hop and re-validating the body would be most of its cost (AddressScore is the
    # documented shape; the tests validate every answer against it).
    checked, row = _find(snap, address)
    return ORJSONResponse(_answer(snap, checked, row))


def _find(snap: Snapshot, address: str) -> tuple[checks.Address, dict]:
    """The address's document; a key found in the data is valid by construction, so the checksums
    (what tells a 422 from a 404) run only for one that is not found as given."""
    row = snap.addresses([address]).get(address)
    if row is not None:
        return checks.Address(address, checks.kinds_of_known(address)), row
    checked = _check(address)  # 422 when it is not a mainnet address
    row = snap.addresses([checked.text]).get(checked.text) if checked.text != address else None
    if row is None:
        raise _not_found(snap, checked.text)
    return checked, row


@router.get("/addresses/{address}/history", response_model=AddressHistory, responses=ERRORS,
            summary="The address's score on every day it was scored, up to the snapshot's day")
def get_history(address: str, snap: Snapshot = Depends(snapshot_for)):
    checked, _ = _find(snap, address)
    return {"address": checked.text, "history": snap.history(checked.text), "lineage": lineage(snap)}


def _wants_csv(request: Request, fmt: str | None) -> bool:
    return fmt == "csv" or (fmt is None and "text/csv" in request.headers.get("accept", ""))


def _csv(rows: list[dict], columns: tuple[str, ...], headers: dict) -> Response:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


def _csv_row(item: dict) -> dict:
    result, problem = item.get("result") or {}, item.get("problem") or {}
    decision = result.get("decision") or {}
    profile = result.get("profile") or {}
    return {
        "address": item["address"], "status": item["status"], "score": result.get("score"),
        "is_pool": decision.get("is_pool"), "threshold": decision.get("threshold"),
        "known_pool": result.get("known_pool"),
        "pools": ";".join(str(p["pool_name"]) for p in result.get("pools", [])),
        "profile": profile.get("profile"), "anomaly_score": profile.get("anomaly_score"),
        "first_seen": result.get("first_seen"), "last_seen": result.get("last_seen"),
        "first_flagged": result.get("first_flagged"), "scored_day": result.get("scored_day"),
        "model_version": result.get("model_version"), "problem": problem.get("detail"),
    }


@router.post("/addresses:lookup", response_model=LookupResponse,
             responses={413: {"model": Problem, "description": f"More than {MAX_BATCH} addresses"},
                        200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with Accept: text/csv"}},
             summary=f"Up to {MAX_BATCH} addresses at once; each found, not found, or invalid (with why)")
async def lookup(request: Request, format: str | None = None, snap: Snapshot = Depends(snapshot_for)):
    raw = bytearray()
    async for chunk in request.stream():  # a chunked body has no Content-Length for Guard to check
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise ApiError(413, "too_large", f"the body is over {MAX_BODY_BYTES:,} bytes",
                           what_to_do=f"send at most {MAX_BATCH:,} addresses per lookup")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(422, "invalid_body", "the body is not JSON",
                       what_to_do='send {"addresses": ["1…", "bc1…"]} as application/json') from None
    addresses = body.get("addresses") if isinstance(body, dict) else None
    if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
        raise ApiError(422, "invalid_body", 'the body must be {"addresses": [<string>, …]}',
                       what_to_do='send {"addresses": ["1…", "bc1…"]}')
    if len(addresses) > MAX_BATCH:
        raise ApiError(413, "too_many", f"{len(addresses):,} addresses in one lookup; at most {MAX_BATCH:,}",
                       what_to_do=f"split the list into batches of {MAX_BATCH:,}")
    if format not in (None, "json", "csv"):
        raise ApiError(422, "bad_format", f"format={format!r}; use json or csv")
    known = snap.addresses(addresses)
    items: list[dict] = []
    for text in addresses:
        row = known.get(text)
        if row is not None:
            items.append({"address": text, "status": "found",
                          "result": _answer(snap, checks.Address(text, checks.kinds_of_known(text)), row)})
            continue
        try:
            checked = checks.parse(text)
        except checks.AddressError as exc:
            items.append({"address": checks.printable(text), "status": "invalid",
                          "problem": {"error": "malformed_address" if exc.kind == "malformed" else "not_an_address",
                                      "detail": exc.message, "kind": exc.kind}})
            continue
        row = snap.addresses([checked.text]).get(checked.text) if checked.text != text else None
        if row is None:
            items.append({"address": checked.text, "status": "not_found",
                          "problem": {"error": "not_found", "detail": _not_found(snap, checked.text).detail}})
        else:
            items.append({"address": checked.text, "status": "found", "result": _answer(snap, checked, row)})
    found = sum(1 for item in items if item["status"] == "found")
    headers = {"X-Snapshot-Day": snap.day, "X-Model-Version": snap.meta["model_version"]}
    if _wants_csv(request, format):
        return _csv([_csv_row(item) for item in items], CSV_COLUMNS, headers)
    # Built as LookupResponse describes (the tests validate it against the model); returned as is,
    # since re-validating 1,000 results would double the batch's time.
    return ORJSONResponse({"snapshot_day": snap.day, "model_version": snap.meta["model_version"],
                           "found": found, "results": items}, headers=headers)
