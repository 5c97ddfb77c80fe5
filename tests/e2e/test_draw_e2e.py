"""End to end, as a person would: JupyterLab in headless Chromium, Draw.ipynb run, a 7 drawn with the mouse.

Run by `make e2e` (which installs Debian's chromium if missing, and Playwright without any browser
download). It starts its own JupyterLab on 127.0.0.1 with a random free port and token, on a copy
of the notebook, and stops it whatever happens. The screenshot goes to tests/artifacts/.
"""
import shutil

import pytest

from helpers import model_io, paths, pipeline

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def lab(tmp_path_factory, mnist, start_lab):
    """A JupyterLab server on a folder holding a copy of Draw.ipynb and two freshly trained models, an MLP
    and a ConvNet, each saved with its test accuracy as the notebooks save theirs (and no validation accuracy:
    neither recipe was validated here, so the pad's bold answer is the first's, the MLP's)."""
    root = tmp_path_factory.mktemp("lab")
    shutil.copy(paths.ROOT / "notebooks" / "Draw.ipynb", root / "Draw.ipynb")
    for name, recipe in (("model", {**pipeline.RECIPES["default"], "epochs": 5}),
                         ("conv", {**pipeline.RECIPES["conv"], "epochs": 1})):
        run = pipeline.train_recipe(recipe, mnist, progress=False, final=True)
        model_io.save_model(run["model"], root / f"{name}.npz", pipeline.test_once(run, mnist))
    env = {"NN_MODELS_DIR": str(root), "NN_MODEL_PATH": str(root / "model.npz"),
           "NN_CONV_MODEL_PATH": str(root / "conv.npz")}
    return start_lab(root, env), root


def test_draw_a_seven_and_see_the_prediction(lab, browser, run_all, artifacts):
    (url, token), root = lab
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    page.set_default_timeout(120_000)
    try:
        canvas = page.locator(".jp-OutputArea-output canvas").last
        run_all(page, url, token, "Draw.ipynb", canvas)
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
        page.screenshot(path=str(artifacts / "draw_e2e.png"), full_page=True)
        assert prediction.inner_text().strip() == "Prediction: 7"
        better = model_io.best_saved([root / "model.npz", root / "conv.npz"])[0].stem  # by validation accuracy
        status = prediction.locator("xpath=..").inner_text()  # the line that holds the bold answer
        assert status.strip() == f"Prediction: 7 by the {'ConvNet' if better == 'conv' else 'MLP'}"
        assert chart.evaluate("img => img.naturalWidth") > 900  # both models' probabilities, side by side
        page.get_by_role("button", name="Clear").click()  # wipes the canvas and the output
        page.get_by_text("Draw a digit in the box with the mouse.").last.wait_for(state="visible")
        assert page.locator(".widget-output img").count() == 0
    except Exception:
        page.screenshot(path=str(artifacts / "draw_e2e_failure.png"), full_page=True)  # what went wrong
        raise
