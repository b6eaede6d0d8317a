"""Finding a file of a run folder in either layout: pcls's `output_dir/<run>/latest.*` and PaddleClas's
`output_dir/<Arch.name>/latest.*`. Used wherever a run folder is accepted (`--weights`, `--resume`, eval)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from pcls.errors import PclsError

WEIGHT_SUFFIXES = (".pdparams", ".safetensors")


def file_of(prefix: Path, suffixes=WEIGHT_SUFFIXES) -> Optional[Path]:
    """The first `prefix` + suffix (in the order of `suffixes`) that is a file, or None."""
    return next((p for p in (prefix.with_name(prefix.name + s) for s in suffixes) if p.is_file()), None)


def has_files(prefix: Path, suffixes) -> bool:
    """Whether `prefix` + any of `suffixes` is a file."""
    return file_of(prefix, suffixes) is not None


def find_in_run(folder, stem: str, suffixes=WEIGHT_SUFFIXES) -> Optional[Path]:
    """The prefix `stem` (e.g. latest, best_model) of a run folder in either layout, or None: `folder/stem`,
    else `folder/<sub>/stem` when exactly one sub-folder holds it (PaddleClas's `output/<Arch.name>/`)."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    if has_files(folder / stem, suffixes):
        return folder / stem
    found = sorted(sub / stem for sub in folder.iterdir() if sub.is_dir() and has_files(sub / stem, suffixes))
    if len(found) > 1:
        raise PclsError(f"{folder} holds several runs with {stem} ({', '.join(p.parent.name for p in found[:4])}); "
                        f"name one of them, e.g. {found[0].parent}")
    return found[0] if found else None
