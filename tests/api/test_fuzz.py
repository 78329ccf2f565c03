"""No request makes the server answer 500: hypothesis throws paths, query strings and bodies at a
real server; every answer is below 500 (503 only never: a snapshot is loaded) and every error is
a JSON problem."""
from __future__ import annotations

import string
import urllib.parse

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PATHS = ["/v1/addresses/{}", "/v1/addresses/{}/history", "/v1/pools/{}", "/v1/model/files/{}/{}",
         "/{}", "/v1/{}", "/addresses/{}"]
ALPHABET = st.characters(codec="utf-8", exclude_categories=("Cs",))
# Parts that look like addresses, numbers, days, traversal, SQL: where bugs would be.
TRICKY = st.sampled_from(["1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "bc1", "nonstandard", "' OR 1=1 --", "..", "%00",
                          "-1", "99999999999999999999", "2024-03-01", "0x", "ﬀ", "\u0000", ",", "a,b", " "])
TEXT = st.one_of(TRICKY, st.text(ALPHABET, max_size=120),
                 st.text(string.ascii_letters + string.digits, min_size=20, max_size=70))
QUERY = st.dictionaries(st.sampled_from(["as_of", "limit", "offset", "min_score", "format", "x"]), TEXT, max_size=3)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])


def _check(r):
    assert r.status_code < 500, (r.request.method, str(r.request.url), r.status_code, r.text[:300])
    if r.status_code >= 400:
        body = r.json()
        assert body["error"] and body["detail"], body


@FUZZ
@given(template=st.sampled_from(PATHS), parts=st.lists(TEXT, min_size=2, max_size=2), query=QUERY)
def test_any_path_and_query_is_answered_below_500(client, template, parts, query):
    path = template.format(*(urllib.parse.quote(p, safe="") for p in parts))
    _check(client.get(path, params=query))


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
                    lambda children: st.lists(children, max_size=5) | st.dictionaries(TEXT, children, max_size=4),
                    max_leaves=20)


@FUZZ
@given(body=st.one_of(JSON, st.fixed_dictionaries({"addresses": st.lists(st.one_of(TEXT, JSON), max_size=30)})),
       accept=st.sampled_from(["application/json", "text/csv", "*/*", "text/csv;q=0.5, application/json"]),
       query=QUERY)
def test_any_lookup_body_is_answered_below_500(client, body, accept, query):
    _check(client.post("/v1/addresses:lookup", json=body, headers={"Accept": accept}, params=query))


RAW = st.one_of(st.binary(max_size=300), st.sampled_from([b"Infinity", b'{"addresses": [NaN]}', b"-1e999",
                                                          b'{"addresses": ["\\ud800"]}', b"\xff\xfe"]))


@FUZZ
@given(raw=RAW, content_type=st.sampled_from(["application/json", "text/plain", "", "a/b"]))
def test_any_raw_bytes_are_answered_below_500(client, raw, content_type):
    _check(client.post("/v1/addresses:lookup", content=raw, headers={"Content-Type": content_type}))


def test_invalid_utf8_and_surrogates_in_paths_and_bodies_get_422_not_500(client):
    for path in ("/v1/addresses/%ED%A0%80", "/v1/addresses/%FF%FE", "/v1/addresses/%00", "/v1/pools/%F0%9F%92%A9",
                 "/v1/addresses/1A1z%0AP1", "/v1/candidates?limit=%FF", "/v1/addresses/x?as_of=%ED%A0%80"):
        _check(client.get(path))
    r = client.post("/v1/addresses:lookup", content=b'{"addresses": ["\\ud800", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"]}',
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 200
    assert [i["status"] for i in r.json()["results"]] == ["invalid", "not_found"]
    assert "surrogate" in r.json()["results"][0]["problem"]["detail"]
