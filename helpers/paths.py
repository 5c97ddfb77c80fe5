"""Every default path of the project, in one place, and `shown` for printing a path.

Other modules take paths as arguments and fall back to these. Two environment
variables let tests and the command line point the notebooks elsewhere without
editing them: NN_DB_PATH (the SQLite file), NN_MODELS_DIR (the folder of saved models, models/),
and within it, unless set on their own, NN_MODEL_PATH (the saved MLP of Neural_net.ipynb) and
NN_CONV_MODEL_PATH (the saved ConvNet of Conv_net.ipynb).
A relative value is resolved against the repository root (and `~` is expanded), so it
names the same file from the command line and from a notebook kernel started in notebooks/.
"""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_PATH = ROOT / "data" / "mnist.npz"


def from_env(name, default):
    """The path in environment variable `name` (relative to ROOT, `~` expanded), else default."""
    value = os.environ.get(name)
    if not value:
        return Path(default)
    path = Path(value).expanduser()
    return path if path.is_absolute() else ROOT / path


def shown(path):
    """path as it should be printed: relative to the repository root when inside it, so saved
    notebook outputs and logs never hold the absolute path of one machine."""
    path = Path(path)
    try:
        return str(path.absolute().relative_to(ROOT))
    except ValueError:
        return str(path)


DB_PATH = from_env("NN_DB_PATH", ROOT / "database.db")
MODELS_DIR = from_env("NN_MODELS_DIR", ROOT / "models")
MODEL_PATH = from_env("NN_MODEL_PATH", MODELS_DIR / "default.npz")
CONV_MODEL_PATH = from_env("NN_CONV_MODEL_PATH", MODELS_DIR / "conv.npz")
# The search's runs (curves and metrics; committed, so that it resumes on any clone) and its results.
SEARCH_DB_PATH = from_env("NN_SEARCH_DB_PATH", ROOT / "results" / "search.db")
SEARCH_RESULTS = from_env("NN_SEARCH_RESULTS", ROOT / "results" / "search.json")
# Where `predict` and Draw.ipynb look for the best model: the notebooks' two and `make long`'s two.
SAVED_MODELS = (MODEL_PATH, CONV_MODEL_PATH, MODELS_DIR / "long.npz", MODELS_DIR / "conv-long.npz")
