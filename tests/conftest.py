"""Shared fixtures: MNIST and one model trained with the default recipe, once per test session."""
import pytest

from helpers import data, pipeline


@pytest.fixture(scope="session")
def mnist():
    return data.load_mnist()


@pytest.fixture(scope="session")
def default_model(mnist):
    return pipeline.train_recipe("default", mnist, progress=False, eval_test_each_epoch=False)["model"]
