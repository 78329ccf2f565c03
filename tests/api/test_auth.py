"""The API key (on for the gcp target): a /v1 request without it gets 401, with a wrong one 403,
with the right one its answer; health and the pages' shells stay open (Cloud Run's probes)."""
from __future__ import annotations

import pytest

from api.settings import Settings, SettingsError
from tests.api.conftest import start_server

KEY = "s3cret-key-for-tests"


@pytest.fixture(scope="module")
def keyed(served):
    running = start_server(served[0], api_key=KEY)
    yield running
    running.stop()


@pytest.mark.parametrize("path", ["/v1/pools", "/v1/model", "/v1/candidates",
                                  "/v1/addresses/1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"])
def test_without_a_key_401_with_a_wrong_one_403(keyed, path):
    with keyed.client() as c:
        missing = c.get(path)
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "ApiKey"
        assert missing.json()["error"] == "unauthorized"
        assert c.get(path, headers={"X-API-Key": "wrong"}).status_code == 403
        assert c.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 403
        right = c.get(path, headers={"X-API-Key": KEY})
        assert right.status_code in (200, 404) and right.json().get("error") != "unauthorized"
        assert c.get(path, headers={"Authorization": f"Bearer {KEY}"}).status_code == right.status_code


def test_a_lookup_needs_the_key_too(keyed, served):
    with keyed.client() as c:
        body = {"addresses": served[1].addresses[:3]}
        assert c.post("/v1/addresses:lookup", json=body).status_code == 401
        assert c.post("/v1/addresses:lookup", json=body, headers={"X-API-Key": KEY}).json()["found"] == 3


def test_health_readiness_and_page_shells_need_no_key(keyed):
    with keyed.client() as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").status_code == 200
        assert c.get("/").status_code == 200


def test_the_key_is_read_from_the_environment_and_required_on_gcp():
    env = {"POOL_API_BUCKET": "gs://b", "POOL_CLASSIFIER_TARGET": "gcp"}
    with pytest.raises(SettingsError, match="POOL_API_KEY"):
        Settings.from_env(env)
    assert Settings.from_env({**env, "POOL_API_KEY": KEY}).api_key == KEY
    assert Settings.from_env({"POOL_API_BUCKET": "/tmp/b", "POOL_API_REQUIRE_KEY": "off"}).api_key is None
    with pytest.raises(SettingsError):
        Settings.from_env({"POOL_API_BUCKET": "/tmp/b", "POOL_API_REQUIRE_KEY": "on"})
