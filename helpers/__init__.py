"""helpers: the NumPy neural network behind notebooks/Neural_net.ipynb, and its data, training and storage.

Modules: data (loading MNIST, checks), nn (the network's math), training (optimisers, fit),
model_io (save and load), db (SQLite), pipeline (named recipes), experiments (seeds and
sweeps), plots, images (your own digits), paths (every default path). The names most code needs are re-exported here.
"""
from .data import load_mnist
from .model_io import load_model, save_model
from .nn import MLP
from .training import fit

__all__ = ["MLP", "fit", "load_mnist", "load_model", "save_model"]
