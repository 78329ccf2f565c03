"""/v1/pools/activity: blocks per pool over the last hours, the unknown share and how fresh the
data is (the hourly DAG's `activity/recent/`). Always an answer: no data or stale data is a
`status`, never an error."""
from __future__ import annotations

from fastapi import APIRouter, Query, Request

from api import activity
from api.schemas import ActivityResponse

router = APIRouter(prefix="/v1", tags=["pools"])


@router.get("/pools/activity", response_model=ActivityResponse, response_model_by_alias=True,
            summary="Blocks per pool over the last hours (mempool's /api/v1/mining/pools/24h figures)")
def pools_activity(request: Request, hours: int = Query(24, ge=1, le=activity.MAX_HOURS,
                                                        description="The hours up to the newest processed one")):
    reader: activity.ActivityReader = request.app.state.activity
    return activity.activity(reader.current(), hours, last_error=reader.last_error)
