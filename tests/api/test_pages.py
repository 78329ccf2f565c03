"""The pages in a real headless Chromium over a real server: what a person would look at after the
scripts ran (the address's score and pool, the charts and what they plot, the model's versions and
plots), saved as screenshots under docs/img/ (api_address.png, api_pools.png, api_model.png)."""
from __future__ import annotations

import re
import shutil
import subprocess
import urllib.parse

import pytest

from tests.api.conftest import build_bucket, start_server
from tests.conftest import PROJECT_ROOT
from tools import synthetic_serving

IMG = PROJECT_ROOT / "docs" / "img"
BROWSER = next((b for b in ("/usr/bin/chromium", shutil.which("chromium") or "", shutil.which("chromium-browser") or "",
                            shutil.which("google-chrome") or "") if b and shutil.which(b)), None)
pytestmark = pytest.mark.skipif(BROWSER is None,
                                reason="no Chromium: apt-get install -y chromium (scripts/e2e.sh does)")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A bucket whose scores carry contributions (so the bar chart has bars) but on the first day, all days
    published."""
    bucket, truth = build_bucket(tmp_path_factory.mktemp("pages"), publish_until="2024-03-03",
                                 contributions=("2024-03-02", "2024-03-03"))
    server = start_server(bucket)
    yield server, truth
    server.stop()


def chromium(tmp_path, url: str, *, screenshot: str | None = None) -> str:
    """The DOM after the page's scripts ran (5 s of virtual time), and a screenshot if asked."""
    args = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
            "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1280,900", "--virtual-time-budget=5000", "--hide-scrollbars"]
    if screenshot:
        IMG.mkdir(parents=True, exist_ok=True)
        subprocess.run([*args, f"--screenshot={IMG / screenshot}", url], capture_output=True, timeout=60, check=True)
    out = subprocess.run([*args, "--dump-dom", url], capture_output=True, text=True, timeout=60, check=True)
    return out.stdout


def _text(dom: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</div>', dom, re.S)
    assert match, f"no #{element_id} in the page"
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


def test_the_address_page_shows_score_decision_pool_and_both_charts(site, tmp_path):
    server, truth = site
    address = next(a for a in truth.addresses if a in truth.labels and (a, "2024-03-03") in truth.scores)
    dom = chromium(tmp_path, f"{server.url}/addresses/{address}", screenshot="api_address.png")
    assert _text(dom, "score") == f"{truth.scores[(address, '2024-03-03')]:.4f}"
    assert truth.labels[address][1] in _text(dom, "pool")
    assert _text(dom, "decision") == "pool address"
    assert "score (calibrated probability)" in dom.lower()
    assert re.search(r"decision \(threshold 0\.5: precision 0\.\d{3}, recall (0|1)\.\d{3}\)", dom, re.IGNORECASE)
    features = "|".join(f for f, _ in sorted(synthetic_serving.CONTRIBUTING, key=lambda c: -abs(c[1])))
    assert f'data-series="{features}"' in dom  # the contributions' bars, largest first
    summed = re.search(r'id="contributions-sum"[^>]*>(.*?)</p>', dom, re.S)
    assert summed and summed.group(1).startswith("log-odds ") and "= bias -3 + these 5 + the other features " in summed.group(1)
    days = [d for d in truth.days if (address, d) in truth.scores]
    assert f'data-series="{"|".join(days)}"' in dom  # the score history's points
    assert "box-sizing: border-box" in dom  # Chart.js sized and drew the canvases
    assert 'id="problem"' not in dom


def test_the_address_page_says_why_an_address_has_no_contributions(site, tmp_path):
    server, truth = site
    address = truth.addresses[3]  # active on the first day only, scored before contributions existed
    dom = chromium(tmp_path, f"{server.url}/addresses/{address}")
    why = re.search(r'id="no-contributions"[^>]*>(.*?)</p>', dom, re.S)
    assert why and "scored on 2024-03-01 by a scoring batch that did not compute contributions" in why.group(1)
    assert 'id="contributions-sum"' not in dom


def test_the_address_page_says_what_a_bad_address_is(site, tmp_path):
    server, _ = site
    wif = "5HueCGU8rMjxEXxiPuD5BDku4MkFqeZyd4dZ1jvhTVqvbTLvyTJ"
    dom = chromium(tmp_path, f"{server.url}/addresses/{urllib.parse.quote(wif)}")
    assert 'id="problem"' in dom and "422" in dom and "private key" in dom


def test_the_pools_page_charts_the_share_of_blocks_of_each_pool(site, tmp_path):
    server, _ = site
    dom = chromium(tmp_path, f"{server.url}/pools", screenshot="api_pools.png")
    series = re.search(r'id="shares"[^>]*data-series="([^"]*)"|data-series="([^"]*)"[^>]*id="shares"', dom)
    assert series, "the pools chart was not drawn"
    plotted = set((series.group(1) or series.group(2)).split("|"))
    assert {"OCEAN", "Eligius", "KanoPool", "Foundry USA", "AntPool"} <= plotted
    for pool in ("OCEAN", "Eligius", "KanoPool"):
        assert f'data-pool="{pool}"' in dom
    assert "box-sizing: border-box" in dom


def test_the_model_page_shows_champion_challenger_and_the_reports_plots(site, tmp_path):
    server, truth = site
    dom = chromium(tmp_path, f"{server.url}/model", screenshot="api_model.png")
    assert _text(dom, "champion") == truth.champion and _text(dom, "challenger") == truth.challenger
    assert 'id="comparison"' in dom and 'id="metrics"' in dom
    # How each model decides: its calibrated probability, its threshold, the precision and recall it gives.
    assert re.search(rf"{truth.champion} \(champion\): sigmoid-calibrated probability \(Brier [0-9.]+ raw → [0-9.]+\); "
                     r"threshold 0\.5000 for target precision 0\.95 \(reached\): precision 0\.\d{4}, recall "
                     r"(0|1)\.\d{4} on its evaluation rows", dom)
    assert f'data-src="/v1/model/files/{truth.champion}/pr_curve.png"' in dom and 'src="blob:' in dom


def test_the_search_page_lists_candidates(site, tmp_path):
    server, _ = site
    dom = chromium(tmp_path, f"{server.url}/")
    assert "Serving the snapshot of 2024-03-03" in dom
    assert dom.count('href="/addresses/') >= 3
