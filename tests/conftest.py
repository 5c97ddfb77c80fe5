"""Shared fixtures: MNIST, a model of the default recipe, and the two long notebooks, each once per
test session.

Neural_net.ipynb and Conv_net.ipynb take minutes each. When a selected test reads them (through the
`executed` and `executed_conv` fixtures of test_notebooks.py), both start as soon as the session
starts, each in a process of its own, and the other tests run meanwhile; a test that reads one waits
for it. Every process then keeps to one BLAS thread: on two cores, a BLAS thread that waits for a
second one busy elsewhere spins, and three such processes ran several times slower than one at a time.
"""
import os
import signal
import subprocess
import sys

import nbformat
import pytest

from helpers import data, paths, pipeline

ONE_THREAD = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
# The fixture that reads each long notebook -> (the notebook, the folder its kernel starts in)
LONG = {"executed": ("Neural_net.ipynb", "notebooks"), "executed_conv": ("Conv_net.ipynb", ".")}
# A notebook executed as JupyterLab would in the folder cwd, saved to out even if a cell fails.
RUNNER = """import sys, nbformat
from nbclient import NotebookClient
src, cwd, out = sys.argv[1:]
nb = nbformat.read(src, as_version=4)
try:
    NotebookClient(nb, timeout=1200, kernel_name="python3", resources={"metadata": {"path": cwd}}).execute()
finally:
    nbformat.write(nb, out)
"""


@pytest.fixture(scope="session")
def mnist():
    return data.load_mnist()


@pytest.fixture(scope="session")
def default_model(mnist):
    """The default recipe on all 60,000 images, for 5 of its 20 epochs: about 98%, a quarter of the time."""
    return pipeline.train_recipe({**pipeline.RECIPES["default"], "epochs": 5}, mnist, progress=False,
                                 final=True)["model"]


class Background:
    """The long notebooks, running: start(fixture) launches one; result(fixture) waits for it and
    returns (the executed notebook, its folder of outputs: database.db, model.npz, conv.npz)."""

    def __init__(self, tmp_path_factory):
        self.tmp_path_factory, self.runs = tmp_path_factory, {}

    def start(self, fixture):
        name, cwd = LONG[fixture]
        tmp = self.tmp_path_factory.mktemp(fixture)
        env = {**os.environ, **ONE_THREAD, "NN_DB_PATH": str(tmp / "database.db"), "NN_MODELS_DIR": str(tmp),
               "NN_MODEL_PATH": str(tmp / "model.npz"), "NN_CONV_MODEL_PATH": str(tmp / "conv.npz")}
        log = open(tmp / "run.log", "w")
        process = subprocess.Popen([sys.executable, "-c", RUNNER, str(paths.ROOT / "notebooks" / name),
                                    str(paths.ROOT / cwd), str(tmp / name)], env=env, stdout=log, stderr=log,
                                   start_new_session=True)  # its own process group, with its kernel
        self.runs[fixture] = (process, tmp, name, log)

    def result(self, fixture):
        if fixture not in self.runs:
            self.start(fixture)
        process, tmp, name, log = self.runs[fixture]
        process.wait()
        log.close()
        if not (tmp / name).is_file():  # the runner itself failed: say why
            pytest.fail(f"{name} did not run: {(tmp / 'run.log').read_text()[-3000:]}")
        return nbformat.read(tmp / name, as_version=4), tmp

    def stop(self):
        for process, _, _, log in self.runs.values():
            if process.poll() is None:  # still running (an interrupted session): stop it and its kernel
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            log.close()  # again, if result() closed it: harmless


@pytest.fixture(scope="session", autouse=True)
def background(request, tmp_path_factory):
    """Start the long notebooks that selected tests read; meanwhile this process keeps to one BLAS thread."""
    from threadpoolctl import threadpool_limits

    runs = Background(tmp_path_factory)
    wanted = sorted({f for item in request.session.items for f in item.fixturenames} & set(LONG))
    for fixture in wanted:
        runs.start(fixture)
    try:
        with threadpool_limits(1 if wanted else None):
            yield runs
    finally:
        runs.stop()
