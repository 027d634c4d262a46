"""One exception tree: every exception tapedeck defines lives in tapedeck.errors, under
TapedeckError, and is drawn in that module's docstring."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import tapedeck
from tapedeck import errors


def tapedeck_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module in pkgutil.walk_packages(tapedeck.__path__, "tapedeck."):
        if module.name == "tapedeck.__main__":
            continue  # runs the command line when imported
        loaded = importlib.import_module(module.name)
        for name, value in vars(loaded).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__.startswith("tapedeck")
            ):
                found[f"{value.__module__}.{name}"] = value
    return found


def test_every_exception_is_defined_in_errors_under_the_root() -> None:
    found = tapedeck_exceptions()

    assert found, "no exception classes found"
    for where, cls in found.items():
        assert cls.__module__ == "tapedeck.errors", where
        assert issubclass(cls, errors.TapedeckError), where


def test_the_docstring_draws_every_class() -> None:
    doc = errors.__doc__ or ""
    classes = [
        v for v in vars(errors).values() if inspect.isclass(v) and issubclass(v, BaseException)
    ]

    assert len(classes) >= 14
    for cls in classes:
        assert cls.__name__ in doc, cls.__name__
        assert cls.__name__ in errors.__all__, cls.__name__


def test_public_errors_are_exported_from_the_package() -> None:
    for name in ("APIError", "CassetteError", "ConfigError", "LibraryError", "TapedeckError"):
        assert getattr(tapedeck, name) is getattr(errors, name)
