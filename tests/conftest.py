import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Every test session gets its own cache folder (no results leak between runs)."""
    os.environ["NEUROSPICE_CACHE"] = str(tmp_path_factory.mktemp("nscache"))
    yield


def pytest_collection_modifyitems(config, items):
    from neurospice.circuits.technology import sky130_available
    if sky130_available():
        return
    skip = pytest.mark.skip(reason="sky130 PDK not found (run 'neurospice fetch-pdk')")
    for item in items:
        if "sky130" in item.keywords:
            item.add_marker(skip)
