"""Fixtures for end-to-end tests: one JupyterLab server and one headless Chromium per
session, a fresh page (``lab``: a harness.LabPage) per test. See tests/e2e/harness.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import CHROMIUM, CHROMIUM_ARGS, JupyterServer, LabPage, chromium_available


def pytest_collection_modifyitems(config, items):
    """Every test under tests/e2e is marked e2e and slow."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.slow)


def _require_chromium() -> None:
    if chromium_available():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is missing in CI: install Debian's chromium package.")
    pytest.skip(f"{CHROMIUM} not found: install Debian's chromium to run the e2e tests.")


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory):
    """A JupyterLab server (random port + token) rooted in a temp folder."""
    _require_chromium()
    root = tmp_path_factory.mktemp("lab") / "root"
    env = {}
    if os.environ.get("DFW_CACHE_DIR"):
        env["DFW_CACHE_DIR"] = os.environ["DFW_CACHE_DIR"]
    server = JupyterServer(root, env=env).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def chromium():
    """Headless Debian Chromium via Playwright (WebGL on SwiftShader)."""
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture()
def lab(lab_server, chromium):
    """A LabPage: a fresh browser page (1280x900) on the session's JupyterLab server.

    Kernels started by the test are shut down afterwards.
    """
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    lp = LabPage(lab_server, page)
    yield lp
    try:
        page.evaluate(
            "async () => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
            " if (w && w.sessionContext) await w.sessionContext.shutdown(); }"
        )
    except Exception:  # the page may already be gone; the server stops its kernels anyway
        pass
    context.close()
    lab_server.shutdown_kernels()
