"""The Dagster UI, in a real headless Chromium, shows the changelake asset graph.

Starts ``dagster-webserver -m pipelines.definitions`` on a free port (its own throwaway
DAGSTER_HOME, no services needed: the code location loads offline) and drives Chromium with
Playwright. Needs a ``chromium`` on PATH (Debian's package; ``.ci/run`` installs it when
``command -v chromium`` finds none): skipped with the reason when it is missing, FAILED under
``CI=true``, where a missing browser must not pass as green.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.config import DEMO_TABLES, REPO_ROOT

pytestmark = pytest.mark.integration

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def chromium() -> str:
    """The ``chromium`` on PATH, the same lookup as ``.ci/run``'s ``command -v chromium``."""
    exe = shutil.which("chromium")
    if exe is not None:
        return exe
    msg = "no chromium on PATH (apt-get install -y chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{msg}; CI=true, so the UI test may not be skipped")
    pytest.skip(msg)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def webserver(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A dagster-webserver on a free loopback port; stopped (by pid) after the module.

    Needs ``chromium`` first, so a missing browser skips or fails before anything starts."""
    port = _free_port()
    home = tmp_path_factory.mktemp("dagster_home")
    log = (home / "webserver.log").open("w")
    # The demo shop's tables, whatever other tests of this session captured: their lineage
    # runs through dbt models, which the test looks for.
    env = {**os.environ, "DAGSTER_HOME": str(home), "CHANGELAKE_TABLES": ",".join(DEMO_TABLES)}
    exe = Path(sys.executable).with_name("dagster-webserver")
    proc = subprocess.Popen(
        [str(exe), "-m", "pipelines.definitions", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/server_info", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "dagster-webserver did not come up:\n"
                    + (home / "webserver.log").read_text()[-3000:]
                )
            time.sleep(1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _dismiss_welcome(page) -> None:
    """First visits may show a newsletter dialog over the graph; skip it if it is there."""
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(timeout=5_000)
    except Exception:  # noqa: BLE001 - no dialog this time
        return
    skip.click()


def test_asset_graph_shows_the_pipeline(chromium: str, webserver: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from pipelines.defs.keys import silver_key
    from pipelines.naming import QualifiedName

    captured = [QualifiedName.parse(t) for t in DEMO_TABLES]
    first = silver_key(captured[0])
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            # Global lineage: the three groups as one connected graph, with their sizes.
            page.goto(f"{webserver}/asset-groups", wait_until="domcontentloaded")
            _dismiss_welcome(page)
            page.get_by_text("intermediate").first.wait_for(timeout=120_000)  # dbt loaded too
            page.screenshot(path=str(tmp_path / "global-lineage.png"))
            body = page.inner_text("body")
            for group in ("bronze", "silver", "staging", "intermediate", "marts"):
                assert group in body, body[:2000]

            # One table's neighbourhood: bronze -> silver -> its dbt staging model, with kinds.
            page.goto(f"{webserver}/assets/{'/'.join(first.path)}?view=lineage")
            _dismiss_welcome(page)
            page.get_by_text("Kafka").first.wait_for(timeout=60_000)
            page.get_by_text("dbt", exact=True).first.wait_for(timeout=60_000)
            page.screenshot(path=str(tmp_path / "silver-lineage.png"))
            body = page.inner_text("body")
            for text in ("bronze", "silver", "staging", "Parquet", "DuckDB", "Asset checks"):
                assert text in body, (text, body[:2000])
        finally:
            browser.close()
