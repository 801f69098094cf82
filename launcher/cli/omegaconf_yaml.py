"""OmegaConf (so Hydra) reads every config file through PyYAML's pure-Python parser: 0.2 s for a 1,000-task
list, a tenth of a big submit. `use_libyaml()` makes it parse with libyaml and build exactly as before.

OmegaConf's loader (omegaconf 2.3, `_utils.get_yaml_loader`) is SafeLoader plus a YAML 1.2 float resolver,
no timestamps, a duplicate-key error and pathlib constructors. All of those live in PyYAML's Python-side
resolver and constructor, which the C parser calls too; only scanning and parsing change hands. The trees
are the same (tests/unit/test_omegaconf_yaml.py over every config file we ship); a document libyaml refuses
is parsed again by OmegaConf's own loader, so a user sees the same error message as before.
"""

from __future__ import annotations

import functools

import yaml
from omegaconf import _utils


def use_libyaml() -> None:
    if not hasattr(yaml, "CSafeLoader") or getattr(_utils.get_yaml_loader, "libyaml", False):
        return  # PyYAML built without libyaml: OmegaConf's own loader stays

    original = _utils.get_yaml_loader

    @functools.cache
    def get_yaml_loader():
        return _libyaml_twin(original())

    get_yaml_loader.libyaml = True  # type: ignore[attr-defined]
    get_yaml_loader.original = original  # type: ignore[attr-defined]
    _utils.get_yaml_loader = get_yaml_loader


def _libyaml_twin(pure: type) -> type:
    """`pure`'s resolvers and constructors (found through it in the MRO) over libyaml's parser (first)."""

    class Loader(yaml.CSafeLoader, pure):
        def __init__(self, stream):
            self._stream = stream  # kept to parse again on error
            yaml.CSafeLoader.__init__(self, stream)

        def get_single_data(self):
            try:
                return super().get_single_data()
            except yaml.YAMLError:
                if hasattr(self._stream, "seek"):
                    self._stream.seek(0)
                loader = pure(self._stream)
                try:
                    return loader.get_single_data()
                finally:
                    loader.dispose()

    return Loader
