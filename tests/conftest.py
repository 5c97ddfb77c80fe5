"""Shared fixtures: MNIST and the final model of the default recipe (all 60,000 images), once per test session."""
import pytest

from helpers import data, pipeline


@pytest.fixture(scope="session")
def mnist():
    return data.load_mnist()


@pytest.fixture(scope="session")
def default_model(mnist):
    return pipeline.train_recipe("default", mnist, progress=False, final=True)["model"]
