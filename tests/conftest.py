"""Shared fixtures. Runners are chosen explicitly in every pipeline test:
DirectRunner would silently pick Prism, FnApiRunner or the bundle runner."""

import os
import pathlib
import sys

import pytest

pytest_plugins = ["hybridflow.testing.services.pytest_plugin"]

REPO = pathlib.Path(__file__).resolve().parent.parent
REQUIRE_SERVICES = os.environ.get("HYBRIDFLOW_REQUIRE_SERVICES") == "1"


@pytest.fixture
def hybridflow_cmd():
    """The CLI as a subprocess command (the installed console script's module)."""
    return [sys.executable, "-m", "hybridflow"]
