"""publish_serving: what a day's snapshot holds (the latest score of every address scored up to
the day, not only the day's active ones), its lineage, and how it is published (a versioned day,
the serving root switched last, a backfill not moving the API back, a failed build publishing
nothing)."""
from __future__ import annotations

import hashlib
import json
import math

import duckdb
import pytest

from pool_classifier import datasets
from pool_classifier.io import atomic, doc_index, versioned
from pool_classifier.model.feature_spec import FEATURE_COLUMNS
from pool_classifier.steps import publish_serving
from tests.api.conftest import DAYS, build_bucket
from tools import synthetic_serving


def _snapshot(bucket: str, ds: str) -> tuple[duckdb.DuckDBPyConnection, dict]:
    folder = versioned.resolve(atomic.FS, datasets.serving_dir(datasets.Bucket(bucket), ds))[0]
    con = duckdb.connect(f"{folder}/{datasets.SERVING_FILE}", read_only=True)
    return con, json.loads(con.execute("SELECT body FROM meta").fetchone()[0])


def _latest(truth, ds: str) -> dict[str, tuple[str, float]]:
    latest = {}
    for (address, day), score in sorted(truth.scores.items(), key=lambda kv: kv[0][1]):
        if day <= ds:
            latest[address] = (day, score)
    return latest


@pytest.mark.parametrize("ds", DAYS)
def test_a_snapshot_holds_the_latest_score_of_every_address_scored_up_to_its_day(served, ds):
    bucket, truth = served
    con, meta = _snapshot(bucket, ds)
    rows = con.execute("SELECT address, CAST(scored_day AS VARCHAR), score FROM scores").fetchall()
    expected = _latest(truth, ds)
    assert {a: (d, pytest.approx(s)) for a, d, s in rows} == expected
    assert meta["ds"] == ds and meta["days"] == [d for d in DAYS if d <= ds]


def test_an_address_active_on_the_first_day_only_is_served_with_that_days_score(served):
    bucket, truth = served
    con, _ = _snapshot(bucket, DAYS[-1])
    address = truth.addresses[3]  # i % 7 == 3: active on the first day only
    day, score = con.execute("SELECT CAST(scored_day AS VARCHAR), score FROM scores WHERE address = ?",
                             [address]).fetchone()
    assert (day, score) == (DAYS[0], pytest.approx(truth.scores[(address, DAYS[0])]))
    history = con.execute("SELECT count(*) FROM history WHERE address = ?", [address]).fetchone()[0]
    assert history == 1


def _docs(bucket: str, ds: str) -> doc_index.DocIndex:
    return doc_index.DocIndex(versioned.resolve(atomic.FS, datasets.serving_dir(datasets.Bucket(bucket), ds))[0])


def test_every_scored_or_labelled_address_has_one_document(served):
    bucket, truth = served
    docs = _docs(bucket, DAYS[-1])
    everyone = set(truth.addresses) | set(truth.labels)
    assert len(docs) == len(everyone)
    assert all(docs.get(a, json.loads)["address"] == a for a in everyone)
    assert docs.get("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", json.loads) is None
    only_labelled = docs.get(truth.coinbase_only[0], json.loads)
    assert only_labelled["score"] is None and only_labelled["feature_values"] is None
    assert only_labelled["pools"][0]["pool_name"] == truth.labels[truth.coinbase_only[0]][1]
    some = docs.get(truth.addresses[0], json.loads)
    assert some["score"] == pytest.approx(truth.scores[(truth.addresses[0], DAYS[-1])])
    values = dict(zip(FEATURE_COLUMNS, some["feature_values"]))
    assert isinstance(values["total_tx_output_value"], int) and some["first_seen"].endswith("Z")


def test_history_first_flagged_candidates_and_labels(served):
    bucket, truth = served
    con, meta = _snapshot(bucket, DAYS[-1])
    assert con.execute("SELECT count(*) FROM history").fetchone()[0] == len(truth.scores)
    flagged = {}
    for (address, day), score in sorted(truth.scores.items(), key=lambda kv: kv[0][1]):
        if score >= meta["threshold"]:
            flagged.setdefault(address, day)
    got = dict(con.execute("SELECT address, CAST(first_flagged AS VARCHAR) FROM scores "
                           "WHERE first_flagged IS NOT NULL").fetchall())
    assert got == flagged
    candidates = {a for a, in con.execute("SELECT address FROM candidates").fetchall()}
    latest = _latest(truth, DAYS[-1])
    assert candidates == {a for a, (_, s) in latest.items() if s >= meta["threshold"] and a not in truth.labels}
    assert candidates, "the fixture has candidates"
    labels = {a: (p, n, s) for a, p, n, s in con.execute(
        "SELECT address, pool_id, pool_name, label_source FROM labels").fetchall()}
    assert labels == truth.labels


def test_pools_blocks_share_and_lineage(served):
    bucket, _ = served
    con, meta = _snapshot(bucket, DAYS[-1])
    shares = con.execute("SELECT day, sum(share), sum(blocks) FROM pool_days GROUP BY day ORDER BY day").fetchall()
    assert [(str(d), round(s, 9), b) for d, s, b in shares] == [(d, 1.0, 144) for d in DAYS]
    assert meta["pools_sha256"] == hashlib.sha256(datasets.POOLS_FILE.read_bytes()).hexdigest()
    top = con.execute("SELECT max(block_number) FROM block_pools").fetchone()[0]
    assert meta["watermark"]["block_number"] == top == 832_800 + 3 * 144 - 1
    assert meta["watermark"]["block_time"].startswith(DAYS[-1])
    assert meta["model_version"] == f"hgb-{DAYS[0]}" and meta["challenger_version"] == f"hgb-{DAYS[1]}"


def test_the_serving_root_names_the_newest_day_and_a_backfill_does_not_move_it_back(tmp_path):
    bucket, _ = build_bucket(tmp_path, publish_until=DAYS[-1])
    where = datasets.Bucket(bucket)
    root = versioned.read_pointer(atomic.FS, datasets.serving_root(where))
    assert root["meta"]["ds"] == DAYS[-1]
    again = publish_serving.publish(where, DAYS[0])
    assert again["serving"] is False
    assert versioned.read_pointer(atomic.FS, datasets.serving_root(where))["meta"] == root["meta"]
    day0 = versioned.read_pointer(atomic.FS, datasets.serving_dir(where, DAYS[0]))
    assert day0["version"] == again["version"]  # the day itself was replaced


def test_missing_only_publishes_just_the_days_without_a_snapshot(tmp_path):
    bucket, _ = build_bucket(tmp_path, publish_until=DAYS[1])
    where = datasets.Bucket(bucket)
    kept = versioned.read_pointer(atomic.FS, datasets.serving_dir(where, DAYS[0]))["version"]
    published = publish_serving.publish_all(where, DAYS[-1], missing_only=True)
    assert [p["ds"] for p in published] == [d for d in DAYS if d > DAYS[1]]
    assert versioned.read_pointer(atomic.FS, datasets.serving_dir(where, DAYS[0]))["version"] == kept
    assert publish_serving.publish_all(where, DAYS[-1], missing_only=True) == []


def test_a_layered_state_gives_one_row_per_address(tmp_path):
    """The address state is a base and daily deltas (an active address in each): the snapshot
    still holds each address once, with the same first and last seen."""
    import shutil

    bucket, _ = build_bucket(tmp_path, publish_until=DAYS[-1])
    where = datasets.Bucket(bucket)
    con, _ = _snapshot(bucket, DAYS[-1])
    before = con.execute("SELECT address, first_seen, last_seen FROM scores ORDER BY address").fetchall()
    con.close()
    location = datasets.state_dir(where, "address_state", DAYS[-1])
    layer = versioned.resolve(atomic.FS, location)[0]
    shutil.copytree(layer, f"{location}/v=delta-copy")
    versioned.switch(atomic.FS, location, [versioned.relative_to(location, layer), "v=delta-copy"])
    publish_serving.publish(where, DAYS[-1])
    con, meta = _snapshot(bucket, DAYS[-1])
    after = con.execute("SELECT address, first_seen, last_seen FROM scores ORDER BY address").fetchall()
    assert after == before and len(after) == meta["figures"]["addresses"] > 0


def test_a_failed_build_publishes_nothing(tmp_path):
    bucket, _ = build_bucket(tmp_path, publish_until=DAYS[1])
    where = datasets.Bucket(bucket)
    before = atomic.FS.read_bytes(f"{datasets.serving_root(where)}/{versioned.POINTER}")
    atomic.remove(datasets.state_dir(where, "address_state", DAYS[2]))
    with pytest.raises(FileNotFoundError, match="address state"):
        publish_serving.publish(where, DAYS[2])
    assert atomic.FS.read_bytes(f"{datasets.serving_root(where)}/{versioned.POINTER}") == before
    assert not atomic.exists(datasets.serving_dir(where, DAYS[2]))
    assert versioned.versions(atomic.FS, datasets.serving_dir(where, DAYS[2])) == []


def test_the_command_line_publishes_every_scored_day(tmp_path, monkeypatch, capsys):
    from pool_classifier.targets import local

    monkeypatch.setenv(local.DATA_DIR_ENV, str(tmp_path))  # the bucket is <data>/bucket
    build_bucket(tmp_path)
    assert publish_serving.main(["--ds", DAYS[1]]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [p["ds"] for p in printed] == DAYS[:2]
    where = datasets.Bucket(str(tmp_path / "bucket"))
    assert versioned.read_pointer(atomic.FS, datasets.serving_root(where))["meta"]["ds"] == DAYS[1]


def test_contributions_are_carried_with_what_they_sum_to_and_days_before_them_have_none(tmp_path):
    # Day 1 scored by a batch before contributions existed, day 2 by one that computes them.
    bucket, truth = build_bucket(tmp_path, days=DAYS[:2], publish_until=DAYS[1], contributions=(DAYS[1],))
    _, meta = _snapshot(bucket, DAYS[1])
    assert meta["has_contributions"] is True
    assert meta["raw_outputs"] == {truth.champion: "log-odds"}
    docs = _docs(bucket, DAYS[1])
    address = next(a for a in truth.addresses if (a, DAYS[1]) in truth.scores)
    doc = docs.get(address, json.loads)
    ranked = sorted(synthetic_serving.CONTRIBUTING, key=lambda c: -abs(c[1]))
    assert [c["feature"] for c in doc["contributions"]] == [f for f, _ in ranked]
    features = dict(zip(FEATURE_COLUMNS, doc["feature_values"]))
    assert [c["value"] for c in doc["contributions"]] == [float(features[f]) for f, _ in ranked]
    x = doc["explanation"]
    assert x["raw_output"] == pytest.approx(math.log(doc["score"] / (1 - doc["score"])))
    assert x["bias"] + sum(c["contribution"] for c in doc["contributions"]) + x["rest"] == pytest.approx(
        x["raw_output"], abs=1e-12)
    # Active on day 1 only: its latest score has no contributions, and the document says none.
    old = docs.get(truth.addresses[3], json.loads)
    assert old["scored_day"] == DAYS[0] and old["contributions"] is None and old["explanation"] is None


def test_a_snapshot_of_days_before_contributions_has_none(tmp_path):
    bucket, truth = build_bucket(tmp_path, days=DAYS[:1], publish_until=DAYS[0], contributions=False)
    _, meta = _snapshot(bucket, DAYS[0])
    assert meta["has_contributions"] is False
    doc = _docs(bucket, DAYS[0]).get(truth.addresses[0], json.loads)
    assert doc["score"] is not None and doc["contributions"] is None and doc["explanation"] is None

def test_the_pools_list_of_the_lineage_is_the_one_the_labels_record(tmp_path):
    """The snapshot names the list that labelled the day (its address_labels' pools_sha256), not
    whatever list this machine holds; labels older than the record give none; two lists in one
    day's labels are an error naming them."""
    con = duckdb.connect()

    def labels(name: str, select: str) -> list[str]:
        path = tmp_path / f"{name}.parquet"
        con.execute(f"COPY (SELECT * FROM ({select})) TO '{path}' (FORMAT parquet)")
        return [str(path)]

    other = hashlib.sha256(b"another list").hexdigest()
    one = labels("one", f"SELECT 'a' || i AS address, '{other}' AS pools_sha256 FROM range(3) t(i)")
    assert publish_serving.pools_sha256(con, one) == other
    assert publish_serving.pools_sha256(con, labels("old", "SELECT 'a' AS address")) is None
    two = labels("two", f"SELECT * FROM (VALUES ('a', '{other}'), ('b', 'x')) t(address, pools_sha256)")
    with pytest.raises(publish_serving.DataError, match="2 pools lists"):
        publish_serving.pools_sha256(con, two)
