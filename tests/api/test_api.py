"""The API through a real uvicorn server over the published test bucket: every endpoint's answer,
checked against what the bucket holds (tools/synthetic_serving's Truth) and against the
response models of the OpenAPI schema; every kind of bad input and the status it gets."""
from __future__ import annotations

import csv
import io
import math

import pytest

from api import schemas
from tests.api.conftest import DAYS
from tools import synthetic_serving


def _latest(truth, address: str, ds: str = DAYS[-1]) -> tuple[str, float]:
    days = [d for d in DAYS if d <= ds and (address, d) in truth.scores]
    return days[-1], truth.scores[(address, days[-1])]


def test_health_and_readiness_name_the_day_and_model(client, served):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = schemas.Ready.model_validate(ready.json())
    assert (body.ready, body.snapshot_day, body.model_version) == (True, DAYS[-1], served[1].champion)


def test_an_address_answers_score_decision_pool_profile_features_and_lineage(client, served):
    _, truth = served
    address = next(a for a in truth.addresses if a in truth.labels)
    r = client.get(f"/v1/addresses/{address}")
    assert r.status_code == 200
    body = schemas.AddressScore.model_validate(r.json())
    day, score = _latest(truth, address)
    assert body.score == pytest.approx(score) and body.scored_day == day
    assert body.decision.threshold == 0.5 and body.decision.is_pool == (score >= 0.5)
    # The calibrated probability and how the threshold decides, from the champion's metadata.
    champion = client.get("/v1/model").json()["champion"]
    assert body.probability == body.score and body.decision.calibration == champion["calibration"]["method"]
    chosen = champion["calibration"]["decision"]
    assert (body.decision.target_precision, body.decision.target_reached, body.decision.precision,
            body.decision.recall) == (0.95, True, chosen["precision"], chosen["recall"])
    assert champion["threshold"] == chosen["threshold"] == body.decision.threshold
    pool_id, pool_name, source = truth.labels[address]
    assert body.known_pool and [(p.pool_id, p.pool_name, p.label_source) for p in body.pools] == [
        (pool_id, pool_name, source)]
    # "Is it a pool's wallet?": the fixture's pools with an id divisible by 3 pay their miners in the coinbase.
    assert body.pools[0].label_kind == ("coinbase_miner" if pool_id % 3 == 0 and source == "coinbase"
                                        else "pool_wallet")
    assert body.profile.profile is not None and body.profile.anomaly_score is not None
    assert body.model_version == truth.champion
    assert set(body.features) == set(schemas_features()) and body.features["has_received"] == 1
    assert body.first_seen.startswith(DAYS[0]) and body.last_seen[:10] in DAYS
    assert body.lineage.snapshot_day == DAYS[-1] and body.lineage.data_since == DAYS[0]
    assert len(body.lineage.pools_sha256) == 64 and body.lineage.watermark.block_number == 832_800 + 3 * 144 - 1
    assert body.address_kinds == ["P2PKH address"]


def test_an_address_answers_the_contributions_that_explain_its_score(client, served):
    _, truth = served
    address = next(a for a in truth.addresses if (a, DAYS[-1]) in truth.scores)
    body = schemas.AddressScore.model_validate(client.get(f"/v1/addresses/{address}").json())
    ranked = sorted(synthetic_serving.CONTRIBUTING, key=lambda c: -abs(c[1]))
    assert [c.feature for c in body.contributions] == [f for f, _ in ranked]
    assert [c.value for c in body.contributions] == [body.features[f] for f, _ in ranked]  # the feature's value
    x = body.explanation
    assert x.raw_output_kind == "log-odds" and x.bias == synthetic_serving.BIAS and body.contributions_note is None
    assert x.raw_output == pytest.approx(math.log(body.score / (1 - body.score)), abs=1e-9)
    assert x.bias + sum(c.contribution for c in body.contributions) + x.rest == pytest.approx(x.raw_output, abs=1e-12)
    # In the batch lookup too, the same answer.
    found = client.post("/v1/addresses:lookup", json={"addresses": [address]}).json()["results"][0]["result"]
    assert found["contributions"] == [c.model_dump() for c in body.contributions]


def test_an_address_without_contributions_says_why(client, served):
    _, truth = served
    body = schemas.AddressScore.model_validate(client.get(f"/v1/addresses/{truth.coinbase_only[0]}").json())
    assert body.contributions == [] and body.explanation is None
    assert body.contributions_note.startswith("not scored")


def schemas_features():
    from pool_classifier.model.feature_spec import FEATURE_COLUMNS

    return FEATURE_COLUMNS


def test_an_address_scored_only_on_the_first_day_answers_that_days_score(client, served):
    _, truth = served
    address = truth.addresses[3]
    body = client.get(f"/v1/addresses/{address}").json()
    assert body["scored_day"] == DAYS[0] and body["score"] == pytest.approx(truth.scores[(address, DAYS[0])])
    assert body["lineage"]["snapshot_day"] == DAYS[-1]


def test_as_of_answers_as_of_that_day(client, served):
    _, truth = served
    address = next(a for a in truth.addresses if (a, DAYS[1]) in truth.scores and (a, DAYS[2]) in truth.scores)
    for ds in DAYS:
        body = client.get(f"/v1/addresses/{address}", params={"as_of": ds}).json()
        assert body["lineage"]["snapshot_day"] == ds
        assert (body["scored_day"], body["score"]) == (ds, pytest.approx(truth.scores[(address, ds)]))
    later = client.get(f"/v1/addresses/{address}", params={"as_of": "2030-01-01"}).json()
    assert later["lineage"]["snapshot_day"] == DAYS[-1]
    before = client.get(f"/v1/addresses/{address}", params={"as_of": "2024-02-01"})
    assert before.status_code == 404 and DAYS[0] in before.json()["detail"]
    for bad in ("2024-02-30", "yesterday", "2024-3-1"):
        assert client.get(f"/v1/addresses/{address}", params={"as_of": bad}).status_code == 422


def test_a_pool_address_only_coinbases_paid_is_known_but_not_scored(client, served):
    _, truth = served
    address = truth.coinbase_only[0]
    body = schemas.AddressScore.model_validate(client.get(f"/v1/addresses/{address}").json())
    assert body.known_pool and not body.scored and body.score is None and body.decision is None
    assert body.pools[0].pool_name == truth.labels[address][1]


def test_history_lists_every_day_scored(client, served):
    _, truth = served
    address = truth.addresses[1]
    body = schemas.AddressHistory.model_validate(client.get(f"/v1/addresses/{address}/history").json())
    assert [(p.day, pytest.approx(p.score)) for p in body.history] == [
        (d, pytest.approx(truth.scores[(address, d)])) for d in DAYS if (address, d) in truth.scores]


@pytest.mark.parametrize("text, status, kind", [
    ("tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", 422, "testnet"),
    ("mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn", 422, "testnet"),
    ("5HueCGU8rMjxEXxiPuD5BDku4MkFqeZyd4dZ1jvhTVqvbTLvyTJ", 422, "private_key"),
    ("KwDiBf89QgGbjEhKnhXJuH7LrciVrZi3qYjgd9M7rFU73sVHnoWn", 422, "private_key"),
    ("4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b", 422, "transaction_id"),
    ("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb", 422, "malformed"),  # one character off: bad checksum
    ("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdx", 422, "malformed"),
    ("not an address", 422, "malformed"),
    ("nonstandardzz", 422, "malformed"),
])
def test_bad_addresses_get_422_saying_what_they_are(client, text, status, kind):
    r = client.get(f"/v1/addresses/{text}")
    assert r.status_code == status
    body = schemas.Problem.model_validate(r.json())
    assert body.kind == kind and body.detail and body.what_to_do


def test_a_never_seen_address_gets_404_saying_since_when_the_data_runs(client):
    r = client.get("/v1/addresses/1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa")  # the genesis address: valid, not in the bucket
    assert r.status_code == 404
    detail = r.json()["detail"]
    assert "never seen" in detail and DAYS[0] in detail and DAYS[-1] in detail


def test_lookup_answers_each_address_found_not_found_or_invalid(client, served):
    _, truth = served
    wanted = [truth.addresses[0], "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx",
              truth.addresses[5]]
    r = client.post("/v1/addresses:lookup", json={"addresses": wanted})
    assert r.status_code == 200
    body = schemas.LookupResponse.model_validate(r.json())
    assert [i.status for i in body.results] == ["found", "not_found", "invalid", "found"]
    assert body.found == 2 and body.snapshot_day == DAYS[-1]
    assert body.results[0].result.score == pytest.approx(_latest(truth, truth.addresses[0])[1])
    assert body.results[2].problem.kind == "testnet"


def test_lookup_as_csv(client, served):
    _, truth = served
    r = client.post("/v1/addresses:lookup", json={"addresses": truth.addresses[:10] + ["oops"]},
                    headers={"Accept": "text/csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["address"] for row in rows] == truth.addresses[:10] + ["oops"]
    assert float(rows[0]["score"]) == pytest.approx(_latest(truth, truth.addresses[0])[1])
    assert rows[-1]["status"] == "invalid" and "too short" in rows[-1]["problem"]


def test_a_lookup_of_1000_is_answered_and_1001_gets_413(client, served):
    _, truth = served
    ok = client.post("/v1/addresses:lookup", json={"addresses": truth.addresses[:1000]})
    assert ok.status_code == 200 and ok.json()["found"] == 1000
    over = client.post("/v1/addresses:lookup", json={"addresses": truth.addresses[:1001]})
    assert over.status_code == 413 and "1,000" in over.json()["detail"]
    huge = client.post("/v1/addresses:lookup", content=b"[" + b'"x",' * 200_000 + b'"x"]',
                       headers={"Content-Type": "application/json"})
    assert huge.status_code == 413


@pytest.mark.parametrize("body", [b"not json", b'{"addresses": "1A1z"}', b'{"addresses": [1, 2]}', b"[]", b""])
def test_a_malformed_lookup_body_gets_422(client, body):
    r = client.post("/v1/addresses:lookup", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"] == "invalid_body"


def test_pools_have_blocks_share_per_day_and_addresses(client, served):
    _, truth = served
    body = schemas.PoolsResponse.model_validate(client.get("/v1/pools").json())
    assert sum(p.blocks for p in body.pools) == 3 * 144
    for day in DAYS:
        assert sum(d.share for p in body.pools for d in p.days if d.day == day) == pytest.approx(1.0)
    ocean = next(p for p in body.pools if p.pool_name == "OCEAN")
    assert ocean.labelled_addresses == sum(1 for v in truth.labels.values() if v[1] == "OCEAN")
    assert 0 < ocean.predicted_addresses <= ocean.labelled_addresses
    assert body.unattributed_predicted == client.get("/v1/candidates").json()["total"] > 0
    one = schemas.PoolDetail.model_validate(client.get(f"/v1/pools/{ocean.pool_id}").json())
    assert {a.address for a in one.addresses} == {a for a, v in truth.labels.items() if v[1] == "OCEAN"}
    assert client.get("/v1/pools/999999").status_code == 404
    assert client.get("/v1/pools/ocean").status_code == 422


def test_candidates_are_flagged_and_unlabelled_with_the_day_first_flagged(client, served):
    _, truth = served
    body = schemas.CandidatesResponse.model_validate(client.get("/v1/candidates", params={"limit": 1000}).json())
    expected = {a for a in truth.addresses if a not in truth.labels and _latest(truth, a)[1] >= 0.5}
    assert {c.address for c in body.candidates} == expected and body.total == len(expected)
    assert [c.score for c in body.candidates] == sorted((c.score for c in body.candidates), reverse=True)
    first = body.candidates[0]
    flagged_days = [d for d in DAYS if truth.scores.get((first.address, d), 0) >= 0.5]
    assert first.first_flagged == flagged_days[0]
    r = client.get("/v1/candidates", params={"limit": 5}, headers={"Accept": "text/csv"})
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["address"] for row in rows] == [c.address for c in body.candidates[:5]]
    assert r.headers["x-total-count"] == str(body.total)
    assert client.get("/v1/candidates", params={"limit": 0}).status_code == 422


def test_the_model_names_champion_challenger_and_serves_the_reports_plots(client, served):
    _, truth = served
    body = schemas.ModelResponse.model_validate(client.get("/v1/model").json())
    assert body.champion.version == truth.champion and body.challenger.version == truth.challenger
    assert body.champion.metrics["threshold"] == 0.5 and "Model report" in body.report_markdown
    assert body.champion.plots == [f"/v1/model/files/{truth.champion}/pr_curve.png"]
    png = client.get(body.champion.plots[0])
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert client.get(f"/v1/model/files/{truth.champion}/model.joblib").status_code == 404
    assert client.get(f"/v1/model/files/{truth.champion}/..%2F..%2Fsnapshot.duckdb").status_code in (404, 422)


def test_the_openapi_schema_documents_the_versioned_paths(client):
    spec = client.get("/openapi.json").json()
    assert {"/v1/addresses/{address}", "/v1/addresses:lookup", "/v1/pools", "/v1/pools/{pool_id}",
            "/v1/candidates", "/v1/model", "/healthz", "/readyz"} <= set(spec["paths"])
    assert "AddressScore" in spec["components"]["schemas"]
    assert spec["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey", "in": "header", "name": "X-API-Key",
        "description": "Required when the deployment sets POOL_API_KEY (the gcp target)"}
    assert spec["paths"]["/v1/pools"]["get"]["security"] == [{"ApiKey": []}]
    assert "security" not in spec["paths"]["/healthz"]["get"]
    assert client.get("/docs").status_code == 200


def test_unknown_paths_and_methods_get_json_problems(client):
    r = client.get("/v2/addresses/x")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = client.delete("/v1/pools")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"


def test_it_listens_on_127_0_0_1_by_default():
    from api.settings import Settings

    settings = Settings.from_env({"POOL_API_BUCKET": "/tmp/b"})
    assert (settings.host, settings.port, settings.api_key) == ("127.0.0.1", 8000, None)
    assert Settings.from_env({"POOL_API_BUCKET": "/tmp/b", "PORT": "9001"}).port == 9001


def test_a_bech32_address_in_upper_case_is_found_as_the_data_spells_it(client, served):
    _, truth = served
    address = truth.addresses[5]  # i % 10 == 5: P2WPKH
    assert address.startswith("bc1q")
    body = client.get(f"/v1/addresses/{address.upper()}").json()
    assert body["address"] == address and body["address_kinds"] == ["P2WPKH address"]
    looked = client.post("/v1/addresses:lookup", json={"addresses": [address.upper()]}).json()
    assert looked["results"][0]["status"] == "found" and looked["results"][0]["address"] == address
    taproot = client.get(f"/v1/addresses/{truth.addresses[8]}").json()
    assert taproot["address_kinds"] == ["P2TR address"]


def test_as_of_answers_every_resource_as_of_that_day(client, served):
    pools = client.get("/v1/pools", params={"as_of": DAYS[0]}).json()
    assert pools["lineage"]["snapshot_day"] == DAYS[0]
    assert {d["day"] for p in pools["pools"] for d in p["days"]} == {DAYS[0]}
    assert sum(p["blocks"] for p in pools["pools"]) == 144
    candidates = client.get("/v1/candidates", params={"as_of": DAYS[1], "limit": 1000}).json()
    assert candidates["lineage"]["snapshot_day"] == DAYS[1]
    assert all(c["scored_day"] <= DAYS[1] for c in candidates["candidates"])
    model = client.get("/v1/model", params={"as_of": DAYS[0]}).json()
    assert model["challenger"] is None and model["comparison"] is None  # no challenger trained yet on day 1


@pytest.mark.parametrize("text", ["' OR '1'='1", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa' OR 1=1 --",
                                  "x'); DROP TABLE scores; --"])
def test_sql_in_an_address_is_only_a_string(client, served, text):
    assert client.get(f"/v1/addresses/{text}").status_code == 422
    r = client.post("/v1/addresses:lookup", json={"addresses": [text, served[1].addresses[0]]})
    assert [i["status"] for i in r.json()["results"]] == ["invalid", "found"]
    assert client.get("/v1/candidates", params={"min_score": text}).status_code == 422
    assert client.get("/v1/candidates").json()["total"] > 0  # the tables are all there


def test_the_decision_is_at_the_threshold_of_the_model_that_scored_the_address(client, server, served):
    _, truth = served
    if server.store is None:
        pytest.skip("changes the meta of the server's snapshot in place: needs the server in this process")
    meta = server.store.current.meta
    assert meta["thresholds"] == {truth.champion: 0.5}
    address = next(a for a in truth.addresses if 0.6 < truth.scores.get((a, DAYS[-1]), 0) < 0.95)
    saved, decisions = dict(meta["thresholds"]), meta.pop("decisions")
    try:
        # As if an older champion, saved before calibration, with a stricter threshold scored it.
        meta["thresholds"][truth.champion] = 0.99
        body = client.get(f"/v1/addresses/{address}").json()
        assert body["decision"] == {"is_pool": False, "threshold": 0.99, "calibration": None,
                                    "target_precision": None, "target_reached": None, "precision": None,
                                    "recall": None}
        assert body["probability"] is None and body["score"] == pytest.approx(truth.scores[(address, DAYS[-1])])
    finally:
        meta["thresholds"].clear()
        meta["thresholds"].update(saved)
        meta["decisions"] = decisions
    body = client.get(f"/v1/addresses/{address}").json()
    assert {k: body["decision"][k] for k in ("is_pool", "threshold", "calibration")} == {
        "is_pool": True, "threshold": 0.5, "calibration": "sigmoid"}
    assert body["probability"] == body["score"]


def test_an_address_last_scored_before_contributions_existed_says_so(tmp_path):
    from tests.api.conftest import build_bucket, start_server

    # Days 2 and 3 scored by the batch that computes contributions, day 1 by one before it.
    bucket, truth = build_bucket(tmp_path, publish_until=DAYS[-1], contributions=tuple(DAYS[1:]))
    running = start_server(bucket)
    try:
        with running.client() as c:
            old = schemas.AddressScore.model_validate(c.get(f"/v1/addresses/{truth.addresses[3]}").json())
            as_of_day_1 = schemas.AddressScore.model_validate(c.get(f"/v1/addresses/{truth.addresses[3]}",
                                                                    params={"as_of": DAYS[0]}).json())
            recent = next(a for a in truth.addresses if (a, DAYS[-1]) in truth.scores)
            explained = schemas.AddressScore.model_validate(c.get(f"/v1/addresses/{recent}").json())
    finally:
        running.stop()
    for body in (old, as_of_day_1):  # active on day 1 only
        assert body.scored and body.scored_day == DAYS[0]
        assert body.contributions == [] and body.explanation is None
        assert body.contributions_note == (f"scored on {DAYS[0]} by a scoring batch that did not compute "
                                           "contributions; they appear once the address is scored again")
    assert len(explained.contributions) == 5 and explained.contributions_note is None
