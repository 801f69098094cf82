"""Loading the reference implementations' own files for the parity tests."""

import contextlib
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


@contextlib.contextmanager
def stubbed(unused_imports: tuple[str, ...]):
    """Modules a reference file imports at the top but the functions under test never use, stubbed while
    it is imported (e.g. `datasets` in hellaswag/utils.py), so that torch-free tests run."""
    added = [name for name in unused_imports if name not in sys.modules]
    for name in added:
        stub = types.ModuleType(name)
        stub.__getattr__ = lambda attribute: object  # annotations such as datasets.Dataset
        sys.modules[name] = stub
    try:
        yield
    finally:
        for name in added:
            del sys.modules[name]


def lm_eval_module(relative: str, unused_imports: tuple[str, ...] = ()):
    """A module file of the installed lm_eval package, loaded by path (not through lm_eval.tasks, whose
    __init__ imports the whole framework), with `unused_imports` stubbed."""
    with stubbed(unused_imports):
        path = files("lm_eval") / relative
        name = "lm_eval_ref_" + relative.replace("/", "_")[:-3]
        spec = importlib.util.spec_from_file_location(name, str(path))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


# lm_eval.api.metrics imports sacrebleu (for bleu/chrf/ter only); lm_eval.api.task also imports datasets,
# tqdm and dill (loading, progress bars, caching): none is used by the functions the parity tests call.
METRICS_UNUSED = ("sacrebleu",)
TASK_UNUSED = ("sacrebleu", "datasets", "tqdm", "tqdm.auto", "dill")


def lm_eval_metrics():
    """lm_eval.api.metrics itself (exact_match_hf_evaluate, mean, mean_stderr...)."""
    with stubbed(METRICS_UNUSED):
        return importlib.import_module("lm_eval.api.metrics")


def lm_eval_multiple_choice(choices, gold: int, results, metrics=("acc", "acc_norm")) -> dict:
    """lm-eval 0.4.13's own ConfigurableTask.process_results (output_type multiple_choice, one target) on
    one doc: `results` are its (loglikelihood, is_greedy) per choice, as the model returns them."""
    with stubbed(TASK_UNUSED):
        task = importlib.import_module("lm_eval.api.task")
    view = types.SimpleNamespace(
        config=types.SimpleNamespace(process_results=None),
        _metric_fn_list=dict.fromkeys(metrics),
        OUTPUT_TYPE="multiple_choice",
        multiple_input=False,
        multiple_target=False,
        doc_to_choice=lambda doc: list(choices),
        doc_to_target=lambda doc: gold,
    )
    return task.ConfigurableTask.process_results(view, {}, list(results))


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
