"""The examples in the connectors' docstrings run and print what they say."""

import doctest
import importlib

import pytest


@pytest.mark.parametrize("module", ["hybridflow.io.dynamodb", "hybridflow.io.ecs", "hybridflow.io._batches", "hybridflow.io.hybrid"])
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
