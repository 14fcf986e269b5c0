"""How ``make test`` spreads the suite over processes (pytest-xdist, ``--dist loadfile``).

Each test file runs whole in one worker, so a module's fixtures (a cluster, a
chaos run) are set up once. Files holding a test marked ``slow`` (processes,
soaks: 20-90 s each) are handed out first, so the suite does not end waiting on
one of them while the other worker idles. The API modules run together, in file
order, in one worker: tests/test_api_guard.py's last test checks that every
documented operation answered a validated 2xx in the API tests that ran before it
in the same process (``openapi_check.VALIDATED``), which holds only if they all
ran there. Without xdist (plain ``pytest``) none of this applies.

anyio (under starlette and hypercorn) imports most of its modules on first use, and
pytest rewrites the asserts of every module of a package that registers a pytest
plugin, anyio included, parsing its source with ``ast``. The first static file the
explorer serves imports ``anyio._core._fileio`` in a worker thread; on CPython 3.11.7
that parse, beside the main thread's, failed once with "AST constructor recursion
depth mismatch" (CPython's AST state is not per-thread). So every lazy anyio name is
resolved here, on the main thread, before any test runs. (A node never rewrites:
its imports read the cached bytecode.)
"""

from __future__ import annotations

import os

import anyio
import pytest

for _name in dir(anyio):
    getattr(anyio, _name)

API_MODULES = "tests/test_api"  # test_api.py, test_api_edge.py, test_api_events.py, test_api_guard.py


def pytest_collection_modifyitems(config, items):
    """In an xdist worker: the files with a slow test first (a stable sort, the same in every
    worker, so their collections agree); the scheduler keeps this order (below)."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return
    slow_files = {item.path for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.path not in slow_files)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadFileScheduling

    if config.getoption("dist") != "loadfile":
        return None
    config.option.loadscopereorder = False  # hand files out in collection order (slow ones first), not by test count

    class ApiTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return API_MODULES if path.startswith(API_MODULES) else path

    return ApiTogether(config, log)
