"""Where a workload's ``source.path`` may come from, and what its folder may reach.

A source folder is copied into ``bases/<namespace>/<name>/`` of the GitOps
repository and rendered into the workload's namespace, so whoever chooses
``source.path`` chooses what a cluster runs there. Two rules keep one tenant's
files out of another tenant's namespace:

- **containment**: the path, resolved with every symlink followed, lies inside
  an allowed root (the service: the token's sources folder, by default
  ``sourcesDir/<namespace>/``; the CLI: the bundle's folder unless
  ``--allow-sources-outside``);
- **a closed tree**: nothing inside the folder points out of it, neither a
  symlink nor a local path in a ``kustomization.yaml`` (``resources``,
  ``components``, patches, generators...). Once copied into the repository a
  ``../..`` entry would reach *another tenant's base* there.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from engine import Bundle, InputError

__all__ = ["KUSTOMIZATION_FILES", "SourceRejected", "check_bundle_sources", "escaping_entries", "resolve_contained"]

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
#: kustomization.yaml fields whose entries (strings) are local paths or remote URLs.
_PATH_LISTS = ("resources", "bases", "components", "crds", "configurations", "generators", "transformers",
               "validators", "patchesStrategicMerge", "openapi")
#: Fields holding lists of objects that carry paths.
_NESTED = {"patches": ("path",), "patchesJson6902": ("path",), "configMapGenerator": ("files", "envs", "env"),
           "secretGenerator": ("files", "envs", "env"), "helmCharts": ("valuesFile", "additionalValuesFiles")}


class SourceRejected(ValueError):
    """A ``source.path`` that resolves outside its allowed root, or a folder that reaches out."""


def resolve_contained(value: str, base: Path, roots: Iterable[Path]) -> Path:
    """``base / value`` with every symlink resolved, if it lies inside one of ``roots``.

    Raises:
        SourceRejected: the path does not exist, is not a folder, or lies outside every root.
    """
    if "\x00" in value:
        raise SourceRejected("a path cannot contain a NUL character")
    try:
        path = (base / value).resolve(strict=True)
    except FileNotFoundError:
        raise SourceRejected(f"{value!r} does not exist") from None
    except (OSError, RuntimeError) as exc:  # a symlink loop, a name too long...
        raise SourceRejected(f"{value!r} cannot be resolved: {exc.__class__.__name__}") from None
    allowed = [r.resolve() for r in roots]
    if not any(path == r or path.is_relative_to(r) for r in allowed):
        where = " or ".join(str(r) for r in allowed) or "nowhere"
        raise SourceRejected(f"{value!r} resolves outside the allowed sources folder ({where})")
    if not path.is_dir():
        raise SourceRejected(f"{value!r} is not a folder")
    problems = escaping_entries(path)
    if problems:
        raise SourceRejected(f"{value!r} reaches outside its folder: {problems[0]}")
    return path


def _walk(folder: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        here = Path(dirpath)
        for name in [*dirnames, *filenames]:
            yield here / name


def _local(entry: str) -> bool:
    """Whether a kustomization entry is a local path (not a URL or a remote git spec)."""
    return "://" not in entry and not entry.startswith(("git@", "github.com/", "gitlab.com/", "bitbucket.org/"))


def _paths_of(doc: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for key in _PATH_LISTS:
        entries = doc.get(key)
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, str):
                yield key, entry
    for key, fields in _NESTED.items():
        items = doc.get(key)
        if not isinstance(items, list):
            continue
        for item in items:
            if not isinstance(item, dict):
                continue
            for f in fields:
                values = item.get(f)
                for v in values if isinstance(values, list) else [values]:
                    if isinstance(v, str):
                        yield f"{key}[].{f}", v.split("=", 1)[-1]  # files: [key=path]


def escaping_entries(folder: Path) -> list[str]:
    """Symlinks and kustomization paths inside ``folder`` that point outside it (empty: closed)."""
    root = folder.resolve()
    problems: list[str] = []
    for path in _walk(root):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            try:
                target = path.resolve(strict=True)
            except (OSError, RuntimeError):
                problems.append(f"symlink {rel} is dangling or loops")
                continue
            if not target.is_relative_to(root):
                problems.append(f"symlink {rel} points outside the folder")
            continue
        if path.name not in KUSTOMIZATION_FILES or not path.is_file():
            continue
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            problems.append(f"{rel} is not readable YAML")
            continue
        if not isinstance(doc, dict):
            continue
        for key, entry in _paths_of(doc):
            if not _local(entry):
                continue
            target = Path(os.path.normpath(path.parent / entry))
            if Path(entry).is_absolute() or not target.is_relative_to(root):
                problems.append(f"{rel}: {key} entry {entry!r} leaves the folder")
    return problems


def check_bundle_sources(bundle: Bundle, args: Iterable[Path]) -> None:
    """The CLI's rule: every ``source.path`` lies inside the folder of its bundle file (or a bundle
    folder given on the command line that holds that file) and is a closed tree.

    Raises:
        InputError: naming file, document and ``spec.source.path`` (exit 2).
    """
    folders = [Path(a).resolve() for a in args if Path(a).is_dir()]
    for w in bundle.workloads:
        if w.spec.source is None:
            continue
        origin = bundle.origin("Workload", w.key)
        here = (origin.folder or Path.cwd()).resolve()
        roots = [here, *(f for f in folders if here.is_relative_to(f))]
        try:
            resolve_contained(w.spec.source.path, here, roots)
        except SourceRejected as exc:
            raise InputError(f"{exc}; give --allow-sources-outside to use a source outside the bundle",
                             file=origin.file, document=f"Workload {w.key}", field="spec.source.path") from None
