"""/v1/pools/activity and the /live page over a real server, on a bucket the real hourly steps
wrote from a generated day: the figures equal the table's, no data / an empty window / stale data
are answers (with the age), never an error page; the page in headless Chromium shows the chart
with the test data's pools (screenshot docs/img/api_live.png)."""
from __future__ import annotations

import dataclasses
import datetime as dt
import re
import time

import pytest

from pool_classifier.io.warehouse import load_exports
from pool_classifier.steps import merge_pool_activity as merge
from pool_classifier.steps.publish_pool_activity import publish_pool_activity
from pool_classifier.targets import local
from tests.api.conftest import start_server
from tests.api.test_pages import BROWSER, chromium
from tools import synthetic_chain

DAY = "2024-03-01"


@pytest.fixture(scope="module")
def hourly_bucket(tmp_path_factory):
    """A generated day attributed by the hourly steps: every hour of the day, in runs of 3 h."""
    root = tmp_path_factory.mktemp("activity")
    synthetic_chain.generate(root / "chain", dt.date.fromisoformat(DAY), days=1, tx_per_day=400, seed=5)
    load_exports(root / "chain", root / "warehouse.duckdb")
    target = dataclasses.replace(local.target(), bucket=str(root / "bucket"), warehouse=str(root / "warehouse.duckdb"))
    for hour in range(2, 24, 3):
        merge.merge_pool_activity(target, f"{DAY}T{hour:02d}")
    publish_pool_activity(target)
    return target


@pytest.fixture(scope="module")
def live(hourly_bucket):
    server = start_server(hourly_bucket.bucket)
    yield server
    server.stop()


def table_rows(target) -> list[dict]:
    from pool_classifier import datasets
    from pool_classifier.io import versioned

    fs = versioned.LocalFS()
    rows = []
    for h in range(24):
        location = datasets.activity_hour_dir(target, "pool_activity_hourly", f"{DAY}T{h:02d}")
        rows += [r for p in versioned.data_files(fs, location) for r in merge.read_parquet_rows(fs, p)]
    return rows


def test_the_figures_of_24_hours_are_the_tables(live, hourly_bucket):
    with live.client() as c:
        answer = c.get("/v1/pools/activity", params={"hours": 24})
    assert answer.status_code == 200
    body = answer.json()
    rows = table_rows(hourly_bucket)
    assert body["blockCount"] == sum(r["blocks"] for r in rows) > 100
    assert body["window"] == {"from": f"{DAY}T00:00:00Z", "to": "2024-03-02T00:00:00Z"}
    per_pool = {}
    for r in rows:
        per_pool[r["pool_id"]] = per_pool.get(r["pool_id"], 0) + r["blocks"]
    assert {p["poolId"]: p["blockCount"] for p in body["pools"]} == per_pool
    assert [p["rank"] for p in body["pools"]] == list(range(1, len(per_pool) + 1))
    assert abs(sum(p["share"] for p in body["pools"]) - 1) < 1e-9
    assert body["unknownBlockCount"] == per_pool.get(-1, 0)
    assert body["unknownShare"] == pytest.approx(per_pool.get(-1, 0) / body["blockCount"])
    assert [h["blocks"] for h in body["blocksPerHour"]] == [
        sum(r["blocks"] for r in rows if r["hour"].hour == h) for h in range(24)]
    newest = max(rows, key=lambda r: r["newest_block_number"])
    assert body["newestBlock"]["height"] == newest["newest_block_number"]
    # 2024's blocks are far older than 2 h: stale, with their age, not an error
    assert body["status"] == "stale" and body["newestBlock"]["ageSeconds"] > 86400 * 365
    assert "old" in body["detail"] and body["lineage"]["attributionInputs"] == ["tags+addresses"]


def test_fewer_hours_count_only_the_last_ones(live, hourly_bucket):
    with live.client() as c:
        body = c.get("/v1/pools/activity", params={"hours": 3}).json()
    rows = [r for r in table_rows(hourly_bucket) if r["hour"].hour >= 21]
    assert body["blockCount"] == sum(r["blocks"] for r in rows)
    assert [h["hour"] for h in body["blocksPerHour"]] == [f"{DAY}T{h}:00:00Z" for h in (21, 22, 23)]


@pytest.mark.parametrize("hours", ["0", "169", "a day"])
def test_a_bad_window_is_a_422_naming_it(live, hours):
    with live.client() as c:
        answer = c.get("/v1/pools/activity", params={"hours": hours})
    assert answer.status_code == 422 and "hours" in answer.json()["detail"]


def test_no_data_and_an_empty_window_are_answers_not_errors(tmp_path):
    target = dataclasses.replace(local.target(), bucket=str(tmp_path / "bucket"), warehouse=str(tmp_path / "none.duckdb"))
    server = start_server(target.bucket)
    try:
        with server.client() as c:
            nothing = c.get("/v1/pools/activity").json()
            assert nothing["status"] == "no_data" and "pool_activity_hourly" in nothing["detail"]
            assert c.get("/live").status_code == 200
            # hours processed, no block in them (a warehouse with no block that day)
            from pool_classifier.io import warehouse

            con = warehouse.connect(target.warehouse)
            warehouse.create_tables(con)
            con.close()
            merge.merge_pool_activity(target, "2024-03-05T10")
            publish_pool_activity(target)
            time.sleep(0.3)  # the reader reads the pointer again after poll_seconds (0.2 s here)
            empty = c.get("/v1/pools/activity").json()
    finally:
        server.stop()
    assert empty["status"] == "empty" and empty["blockCount"] == 0 and empty["pools"] == []
    assert [h["status"] for h in empty["blocksPerHour"]][-3:] == ["empty"] * 3


@pytest.fixture(scope="module")
def live_demo(tmp_path_factory):
    """The live demo as `make live` makes it: the seeded chain from yesterday, its blocks up to now
    appended to a warehouse (tools/live_chain), the last 24 h through the hourly steps."""
    from tools import live_chain

    root = tmp_path_factory.mktemp("live")
    now = dt.datetime.now(dt.timezone.utc)
    folder = live_chain.chain_dir(root / "live", (now - dt.timedelta(days=1)).date(), days=2, tx_per_day=300, seed=7)
    blocks, transactions = live_chain.read_chain(folder)
    target = dataclasses.replace(local.target(), bucket=str(root / "bucket"), warehouse=str(root / "warehouse.duckdb"))
    loaded, _ = live_chain.append_due(blocks, transactions, target.warehouse, None, now)
    assert loaded > 144
    hour = now.replace(minute=0, second=0, microsecond=0)
    for back in range(0, 24, 3):
        merge.merge_pool_activity(target, hour - dt.timedelta(hours=back))
    publish_pool_activity(target)
    server = start_server(target.bucket)
    yield server
    server.stop()


@pytest.mark.skipif(BROWSER is None, reason="no Chromium: apt-get install -y chromium (scripts/e2e.sh does)")
def test_the_live_page_charts_the_pools_of_the_data(live_demo, tmp_path):
    dom = chromium(tmp_path, f"{live_demo.url}/live", screenshot="api_live.png")
    with live_demo.client() as c:
        body = c.get("/v1/pools/activity", params={"hours": 24}).json()
    series = re.search(r'id="shares"[^>]*data-series="([^"]*)"|data-series="([^"]*)"[^>]*id="shares"', dom)
    assert series, "the share chart was not drawn"
    plotted = set((series.group(1) or series.group(2)).split("|"))
    top = {p["name"] for p in body["pools"][:5]}
    assert len(top) == 5 and top <= plotted, (top, plotted)
    hours = re.search(r'id="per-hour"[^>]*data-series="([^"]*)"|data-series="([^"]*)"[^>]*id="per-hour"', dom)
    assert hours and len((hours.group(1) or hours.group(2)).split("|")) == 24
    # blocks up to now: fresh (a gap of 2 h between generated blocks is as rare as on the chain)
    assert body["status"] == "ok" and 'data-status="ok"' in dom
    assert body["newestBlock"]["ageSeconds"] < 2 * 3600
    assert f'id="blocks-24h">{body["blockCount"]:,}<' in dom
    for p in body["pools"][:3]:
        assert f'data-pool="{p["name"]}"' in dom
    assert "box-sizing: border-box" in dom  # Chart.js sized and drew the canvases


@pytest.mark.skipif(BROWSER is None, reason="no Chromium: apt-get install -y chromium (scripts/e2e.sh does)")
def test_the_live_page_says_stale_data_is_stale_with_its_age(live, tmp_path):
    dom = chromium(tmp_path, f"{live.url}/live")
    assert 'data-status="stale"' in dom and "days old" in dom
    assert 'id="problem"' not in dom
