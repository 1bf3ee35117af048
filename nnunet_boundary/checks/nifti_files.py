"""Is a NIfTI file complete? SimpleITK -- and with it nnU-Net's default reader -- silently fills the
missing part of a truncated ``.nii``/``.nii.gz`` with zeros, so a file cut short by a crash, a full
disk or an interrupted copy would be trained on, or skipped by ``--continue_prediction``, as if it
were whole. Here the header says how many bytes the voxels need and we count them."""
import gzip
import zlib
from pathlib import Path
from typing import Optional

import nibabel as nib
import numpy as np

NIFTI_ENDINGS = ('.nii.gz', '.nii')
_CHUNK = 1 << 22


def is_nifti(path: Path) -> bool:
    return str(path).endswith(NIFTI_ENDINGS)


def nifti_truncation(path: Path) -> Optional[str]:
    """``None`` if ``path`` holds every voxel byte its header declares, else what is wrong with it."""
    path = Path(path)
    try:
        voxels = nib.load(str(path)).dataobj  # reads only the header
    except Exception as e:  # nibabel raises many types for a cut or foreign header
        return f"no readable NIfTI header ({type(e).__name__}: {e})"
    expected = int(voxels.offset) + int(np.prod(voxels.shape)) * voxels.dtype.itemsize
    if path.name.endswith('.gz'):
        found = 0
        try:
            with gzip.open(path, 'rb') as stream:
                while chunk := stream.read(_CHUNK):
                    found += len(chunk)
        except (EOFError, OSError, zlib.error) as e:
            return f"the gzip stream is cut off before its end marker ({e}); the voxels need {expected} bytes"
    else:
        found = path.stat().st_size
    if found < expected:
        return f"holds {found} bytes but its header needs {expected}"
    return None
