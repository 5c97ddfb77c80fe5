"""Every default path of the project, in one place.

Other modules take paths as arguments and fall back to these. Two environment
variables let tests and the command line point the notebooks elsewhere without
editing them: NN_DB_PATH (the SQLite file) and NN_MODEL_PATH (the saved model).
"""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_PATH = ROOT / "data" / "mnist.npz"
SHARED_MNIST = ROOT.parent / "shared" / "mnist"  # the four original IDX files
DB_PATH = Path(os.environ.get("NN_DB_PATH", ROOT / "database.db"))
MODEL_PATH = Path(os.environ.get("NN_MODEL_PATH", ROOT / "models" / "default.npz"))
