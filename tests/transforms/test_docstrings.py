"""The examples in the transforms' docstrings run and print what they say."""

import doctest
import importlib

import pytest

MODULES = [
    "hybridflow.transforms.parse",
    "hybridflow.transforms.enrich",
    "hybridflow.transforms.expressions",
    "hybridflow.transforms.aggregate",
    "hybridflow.transforms.dedupe",
    "hybridflow.transforms.alerts",
    "hybridflow.transforms.lookups.memory",
]
PUBLIC_TRANSFORMS = ["ParseRecords", "Filter", "Select", "Derive", "Enrich", "WindowedAggregate", "Dedupe", "ThresholdAlerts"]


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{module} has no doctest example"
    assert result.failed == 0


@pytest.mark.parametrize("name", PUBLIC_TRANSFORMS)
def test_every_transform_documents_args_and_a_runnable_example(name):
    import inspect

    import hybridflow

    cls = getattr(hybridflow, name)
    doc = cls.__doc__
    assert "Args:" in doc and ">>> " in doc, name
    for param in inspect.signature(cls.__init__).parameters:
        if param != "self":
            assert f"  {param}:" in doc, f"{name}: parameter {param} is not documented under Args"
