"""What the browser tests share: a JupyterLab server on a temporary folder, headless Chromium, Run All.

`start_lab(root, env)` starts JupyterLab on 127.0.0.1 with a random free port and token, serving
root, and stops it (its whole process group: its kernels too) when the test module ends, whatever
happened. `browser` is Debian's chromium driven by Playwright (which downloads no browser).
Screenshots go to tests/artifacts/.
"""
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from helpers import paths

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = paths.ROOT / "tests" / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(server):
    """Stop the server and its kernels (its whole process group), however the test ended."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    except ProcessLookupError:  # it had already exited
        pass


@pytest.fixture(scope="module")
def start_lab():
    """A function (root, env) -> (url, token) that starts JupyterLab on root; every server stops with the module."""
    started = []

    def start(root, env):
        port, token = free_port(), secrets.token_hex(16)
        env = {**os.environ, **env, "JUPYTER_CONFIG_DIR": str(root / "config")}
        log = open(root / "jupyter.log", "w")
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
             f"--ServerApp.root_dir={root}", f"--LabApp.workspaces_dir={root / 'workspaces'}"]
            + (["--allow-root"] if os.geteuid() == 0 else []),  # CI machines run as root
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        started.append((server, log))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                return url, token
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start: {(root / 'jupyter.log').read_text()[-2000:]}")
                time.sleep(0.5)

    try:
        yield start
    finally:
        for server, log in started:
            stop(server)
            log.close()


@pytest.fixture
def artifacts():
    """The folder for screenshots."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def open_and_run_all(page, url, token, notebook, ready):
    """Open a notebook, wait for its kernel, Run All until the locator `ready` is visible."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(f"{url}/lab/tree/{notebook}?token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for()  # the kernel has started
    for attempt in range(3):
        # A run requested while the kernel is still connecting can be dropped after the
        # first cell (seen here about one time in four), so run all again if nothing came.
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        try:
            ready.wait_for(state="visible", timeout=90_000)
            return
        except PlaywrightTimeout:
            if attempt == 2:
                raise


@pytest.fixture
def run_all():
    return open_and_run_all
