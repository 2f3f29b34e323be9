"""Fixtures for end-to-end tests: one JupyterLab server and one headless Chromium per
session, a fresh page (``lab``: a harness.LabPage) per test; a Notebook 7 server and page
(``nb7``) for the tests that need it; Fashion-MNIST test images as a folder of PNG files
(``fmnist_test_folder``). See tests/e2e/harness.py."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
from harness import (
    CHROMIUM,
    JupyterServer,
    LabPage,
    chromium_available,
    launch_chromium,
    write_png_folder,
)


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


def _server_env() -> dict[str, str]:
    env = {}
    if os.environ.get("DFW_CACHE_DIR"):
        env["DFW_CACHE_DIR"] = os.environ["DFW_CACHE_DIR"]
    return env


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory):
    """A JupyterLab server (random port + token) rooted in a temp folder."""
    _require_chromium()
    root = tmp_path_factory.mktemp("lab") / "root"
    server = JupyterServer(root, env=_server_env()).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def nb7_server(tmp_path_factory):
    """A Jupyter Notebook 7 server (random port + token) rooted in a temp folder; only
    started by the modules that use it."""
    _require_chromium()
    root = tmp_path_factory.mktemp("nb7") / "root"
    server = JupyterServer(root, env=_server_env(), app="notebook").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def chromium():
    """Headless Debian Chromium via Playwright (WebGL on SwiftShader)."""
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        yield browser
        browser.close()


def _page(server, chromium, viewport):
    context = chromium.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(60_000)
    lp = LabPage(server, page)
    yield lp
    from playwright.sync_api import Error as PlaywrightError

    # the page may already be gone; the server stops its kernels anyway
    with contextlib.suppress(PlaywrightError):
        page.evaluate(
            "async () => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
            " if (w && w.sessionContext) await w.sessionContext.shutdown(); }"
        )
    context.close()
    server.shutdown_kernels()


@pytest.fixture()
def lab(lab_server, chromium):
    """A LabPage: a fresh browser page (1280x900) on the session's JupyterLab server.

    Kernels started by the test are shut down afterwards.
    """
    yield from _page(lab_server, chromium, {"width": 1280, "height": 900})


@pytest.fixture()
def nb7(nb7_server, chromium):
    """A LabPage on the module's Notebook 7 server (1280x900): the same helpers as ``lab``
    (Notebook 7 exposes ``window.jupyterapp`` as JupyterLab does)."""
    yield from _page(nb7_server, chromium, {"width": 1280, "height": 900})


@pytest.fixture(scope="session")
def fmnist_test_folder(tmp_path_factory, fmnist_test):
    """Factory: ``fmnist_test_folder(n)`` -> a folder with the first ``n`` Fashion-MNIST
    test images as PNG files in class sub-folders (``<class>/<i:05d>.png``), written once
    per ``n``."""
    made: dict[int, Path] = {}

    def folder(n: int) -> Path:
        if n not in made:
            path = tmp_path_factory.mktemp(f"fmnist_test_{n}") / "images"
            write_png_folder(fmnist_test.array[:n], fmnist_test.labels[:n],
                             fmnist_test.classes, path)
            made[n] = path
        return made[n]

    return folder
