"""End to end, as a person would: JupyterLab in headless Chromium, Draw.ipynb run, a 7 drawn with the mouse.

Run by `make e2e` (which installs Debian's chromium if missing, and Playwright without any browser
download). It starts its own JupyterLab on 127.0.0.1 with a random free port and token, on a copy
of the notebook, and stops it whatever happens. The screenshot goes to tests/artifacts/.
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

from helpers import model_io, paths, pipeline

pytestmark = pytest.mark.e2e
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = paths.ROOT / "tests" / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory, mnist):
    """A JupyterLab server on a folder holding a copy of Draw.ipynb and a freshly trained model."""
    root = tmp_path_factory.mktemp("lab")
    shutil.copy(paths.ROOT / "notebooks" / "Draw.ipynb", root / "Draw.ipynb")
    recipe = {**pipeline.RECIPES["default"], "epochs": 5}
    model_io.save_model(pipeline.train_recipe(recipe, mnist, progress=False)["model"], root / "model.npz")
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "NN_MODEL_PATH": str(root / "model.npz"), "JUPYTER_CONFIG_DIR": str(root / "config")}
    log = open(root / "jupyter.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}", f"--LabApp.workspaces_dir={root / 'workspaces'}"]
        + (["--allow-root"] if os.geteuid() == 0 else []),  # CI machines run as root
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start: {(root / 'jupyter.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield url, token
    finally:
        stop(server)
        log.close()


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


def test_draw_a_seven_and_see_the_prediction(lab):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    url, token = lab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.set_default_timeout(120_000)
            page.goto(f"{url}/lab/tree/Draw.ipynb?token={token}")
            page.wait_for_selector(".jp-Notebook .jp-Cell")
            page.get_by_text("Python 3 (ipykernel) | Idle").wait_for()  # the kernel has started
            canvas = page.locator(".jp-OutputArea-output canvas").last
            for attempt in range(3):
                # A run requested while the kernel is still connecting can be dropped after the
                # first cell (seen here about one time in four), so run all again if nothing came.
                page.get_by_role("menuitem", name="Run", exact=True).click()
                page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
                try:
                    canvas.wait_for(state="visible", timeout=60_000)
                    break
                except PlaywrightTimeout:
                    if attempt == 2:
                        raise
            canvas.scroll_into_view_if_needed()
            box = canvas.bounding_box()
            for stroke in (((95, 60), (200, 60), (120, 230)), ((110, 145), (185, 145))):  # a 7, and its bar
                x, y = stroke[0]
                page.mouse.move(box["x"] + x, box["y"] + y)
                page.mouse.down()
                for (x0, y0), (x1, y1) in zip(stroke, stroke[1:]):
                    for t in range(1, 11):
                        page.mouse.move(box["x"] + x0 + (x1 - x0) * t / 10, box["y"] + y0 + (y1 - y0) * t / 10)
                page.mouse.up()
            prediction = page.locator("b", has_text="Prediction:").last
            prediction.wait_for(state="visible")
            chart = page.locator(".widget-output img").last  # the probabilities, drawn by matplotlib
            chart.wait_for(state="visible")
            page.wait_for_timeout(1000)  # let the last update land before the screenshot
            page.screenshot(path=str(ARTIFACTS / "draw_e2e.png"), full_page=True)
            assert prediction.inner_text().strip() == "Prediction: 7"
            assert chart.evaluate("img => img.naturalWidth") > 300
            page.get_by_role("button", name="Clear").click()  # wipes the canvas and the output
            page.get_by_text("Draw a digit in the box with the mouse.").last.wait_for(state="visible")
            assert page.locator(".widget-output img").count() == 0
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "draw_e2e_failure.png"), full_page=True)  # what went wrong
            raise
        finally:
            browser.close()
