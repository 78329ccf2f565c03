"""The pages: plain HTML shells whose small scripts (static/app.js) read the same /v1 API."""
from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from api.app import STATIC_DIR

router = APIRouter(include_in_schema=False)


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC_DIR / f"{name}.html", media_type="text/html; charset=utf-8")


@router.get("/")
def search_page():
    return _page("index")


@router.get("/addresses/{address}")
def address_page(address: str):
    return _page("address")


@router.get("/pools")
def pools_page():
    return _page("pools")


@router.get("/model")
def model_page():
    return _page("model")


@router.get("/live")
def live_page():
    return _page("live")
