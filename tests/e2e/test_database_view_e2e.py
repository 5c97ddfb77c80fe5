"""End to end, as a person would: JupyterLab in headless Chromium, Database_view.ipynb run, its explorer used once.

Run by `make e2e`. The database is built here, in a temporary folder, by the same pipeline functions
`make run` calls, with short recipes: the baseline for 100 epochs and a final model of the default
recipe on 5,000 images for 2 epochs. The notebook reads it through NN_DB_PATH. The test chooses
the baseline and its most frequent confusion in the explorer's dropdowns and checks that the line
of text and the gallery image both change to that choice. The screenshot goes to tests/artifacts/.
"""
import sqlite3

import nbformat
import pytest

from helpers import paths, pipeline

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def lab(tmp_path_factory, mnist, start_lab):
    """A JupyterLab server on a folder holding Database_view.ipynb (outputs cleared) and a two-run database."""
    root = tmp_path_factory.mktemp("lab")
    nb = nbformat.read(paths.ROOT / "notebooks" / "Database_view.ipynb", as_version=4)
    for cell in nb.cells:  # without its saved outputs and widgets, all the test sees comes from this run
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, root / "Database_view.ipynb")
    recipes = (("baseline", {**pipeline.RECIPES["baseline"], "epochs": 100}, False),
               ("default", {**pipeline.RECIPES["default"], "epochs": 2, "n_train": 5000}, True))
    for name, recipe, final in recipes:
        run = pipeline.train_recipe(recipe, mnist, name=name, final=final, progress=False)
        pipeline.test_once(run, mnist)
        pipeline.save_run(root / "database.db", run, mnist)
    return (*start_lab(root, {"NN_DB_PATH": str(root / "database.db")}), root / "database.db")


def baseline_confusion(db_path):
    """(run id, true digit, predicted digit, images) of the baseline's most frequent test confusion."""
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute("SELECT run_id, label, predicted, COUNT(*) AS n FROM predictions p JOIN runs r "
                            "ON r.id = p.run_id WHERE r.name = 'baseline' AND split = 'test' AND label != predicted "
                            "GROUP BY label, predicted ORDER BY n DESC, label, predicted LIMIT 1").fetchone()
    finally:
        conn.close()


def test_explore_the_baselines_most_frequent_confusion(lab, browser, run_all, artifacts):
    url, token, db_path = lab
    run_id, label, predicted, n = baseline_confusion(db_path)
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    page.set_default_timeout(120_000)
    try:
        status = page.locator(".widget-html b", has_text="test images")
        run_all(page, url, token, "Database_view.ipynb", status.last)
        gallery = page.locator("img.widget-image").last
        gallery.scroll_into_view_if_needed()
        before, first_picture = status.last.inner_text(), gallery.get_attribute("src")
        run, true, read = (page.locator(".widget-dropdown select").nth(i) for i in range(3))
        run.select_option(label=f"{run_id} baseline")
        true.select_option(label=str(label))
        read.select_option(label=str(predicted))
        shown = "all of them" if n <= 20 else f"the {min(n, 20)} most confident"
        expected = f"Run {run_id} (baseline): a true {label} read as {predicted}: {n} test images, {shown} below."
        page.locator(".widget-html b", has_text=expected).wait_for(state="visible")
        page.wait_for_timeout(1000)  # let the picture of the last choice land before the screenshot
        page.screenshot(path=str(artifacts / "database_view_e2e.png"), full_page=True)
        assert expected != before
        assert gallery.get_attribute("src") != first_picture
        assert gallery.evaluate("img => img.naturalWidth") > 300
    except Exception:
        page.screenshot(path=str(artifacts / "database_view_e2e_failure.png"), full_page=True)  # what went wrong
        raise
