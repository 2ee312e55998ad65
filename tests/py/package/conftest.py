"""The package tests import the installed `spore` (make test installs it into
.venv with pip); each test leaves the context in PYNATIVE_MODE."""
import pytest

import spore


@pytest.fixture(autouse=True)
def _pynative_after():
    yield
    spore.set_context(mode=spore.PYNATIVE_MODE)


@pytest.fixture(params=[spore.PYNATIVE_MODE, spore.GRAPH_MODE], ids=["pynative", "graph"])
def mode(request):
    spore.set_context(mode=request.param)
    return request.param
