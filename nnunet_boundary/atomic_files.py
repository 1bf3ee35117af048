"""Outputs written under a temporary name and moved into place, so that an interrupted run never
leaves a half-written file that looks complete (and a rerun redoes it)."""
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import SimpleITK as sitk


def partial_path(path: Path) -> Path:
    """The temporary name a file is written under before it is moved into place.

    It is fixed per output file, so a run interrupted mid-write leaves at most one stale
    temporary file, which the next run overwrites and moves away.
    """
    return path.with_name('.partial-' + path.name)


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; move it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json_atomically(obj, path: Path, indent: int = 2) -> None:
    with atomic_output(Path(path)) as tmp:
        tmp.write_text(json.dumps(obj, indent=indent) + '\n')


def write_image_atomically(image: sitk.Image, path: Path) -> None:
    """A compressed SimpleITK write (NIfTI, or what ``path``'s extension names) under :func:`partial_path`."""
    with atomic_output(Path(path)) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=True)
