"""Loading the reference implementations' own files for the parity tests."""

import importlib
import importlib.util
import os
import sys
import types
from importlib.resources import files

import pytest
import yaml


class _Loader(yaml.SafeLoader):
    """lm-eval's task yamls tag Python hooks with !function; we read the tag's text."""


_Loader.add_constructor("!function", lambda loader, node: f"!function {loader.construct_scalar(node)}")


def lm_eval_yaml(relative: str) -> dict:
    return yaml.load((files("lm_eval") / relative).read_text(encoding="utf-8"), Loader=_Loader)


def lm_eval_module(relative: str, unused_imports: tuple[str, ...] = ()):
    """A module file of the installed lm_eval package, loaded by path (not through lm_eval.tasks, whose
    __init__ imports the whole framework). `unused_imports`: modules it imports at the top but the functions
    under test never use (e.g. `datasets` in hellaswag/utils.py), stubbed so that torch-free tests run."""
    stubbed = [name for name in unused_imports if name not in sys.modules]
    for name in stubbed:
        stub = types.ModuleType(name)
        stub.__getattr__ = lambda attribute: object  # annotations such as datasets.Dataset
        sys.modules[name] = stub
    try:
        path = files("lm_eval") / relative
        name = "lm_eval_ref_" + relative.replace("/", "_")[:-3]
        spec = importlib.util.spec_from_file_location(name, str(path))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        for name in stubbed:
            del sys.modules[name]


def require(module: str):
    """The reference package (tests/parity/requirements.txt): fail under `make test` and in CI, skip on a
    machine set up without it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        problem = f"{module} is not installed (make venv installs tests/parity/requirements.txt)"
        if os.environ.get("LAUNCHER_REQUIRE_DOCKER") == "1" or os.environ.get("CI"):
            pytest.fail(problem)  # as tests.helpers.unavailable, at module level
        pytest.skip(problem, allow_module_level=True)
