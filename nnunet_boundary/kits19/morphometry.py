"""Kidney, tumor and cyst morphometry from KiTS19 and KiTS21/23 label maps: volumes, counts, sizes and sides.

Per case: left and right kidney volume (label 1, mL; components of the foreground, all labels, are assigned to
the patient's left or right), and per tumor (26-connected component of label 2, at least
``min_tumor_ml``, default 0.1 mL, so that stray voxels do not count as tumors): volume (mL),
maximum 3D diameter (cm), maximum axial diameter (cm; the largest in-plane extent over the axial
slices, as radiologists measure a renal mass) and the kidney side it belongs to. KiTS19 records a
``radiographic_size`` per case (Heller et al., arXiv:1904.00445); see
``benchmarks/kits19_morphometry`` for how these diameters compare with it. KiTS21/23 maps add label 3,
cysts: their count and total volume are the 26-connected components of label 3 of at least
``min_cyst_ml`` (default 0.1 mL), counted as tumors are; KiTS19 maps report 0 cysts, 0 mL.

Sides use physical coordinates as SimpleITK reports them (LPS, whatever the file's own
convention: the KiTS19 I-P-L sform, LPS or RAS files alike): patient left is +x. The midline is
halfway between the two largest kidney components when they lie on either side of the centre of
the field of view, else that centre. Diameters are edge-to-edge: the largest distance between
corners of the region's voxels (convex hull of the surface voxels, then all pairs of its
vertices), so a box of n voxels measures n voxel sizes.
"""
import csv
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import numpy as np
import SimpleITK as sitk
from scipy.ndimage import center_of_mass, find_objects, label
from scipy.spatial import ConvexHull, QhullError
from scipy.spatial.distance import pdist

from nnunet_boundary.atomic_files import atomic_output
from nnunet_boundary.kits19.io import KITS23, find_segmentations, read_label_map
from nnunet_boundary.kits19.metrics import surface_voxels
from nnunet_boundary.parallel import map_jobs

FULL_CONNECTIVITY = np.ones((3, 3, 3), bool)
CSV_COLUMNS = ('case', 'left_kidney_ml', 'right_kidney_ml', 'tumor_count', 'cyst_count', 'cyst_ml', 'tumor',
               'tumor_side', 'tumor_ml', 'tumor_max_diameter_3d_cm', 'tumor_max_axial_diameter_cm')


@dataclass
class Tumor:
    side: str
    volume_ml: float
    max_diameter_3d_cm: float
    max_axial_diameter_cm: float


@dataclass
class CaseMorphometry:
    case: str
    left_kidney_ml: float
    right_kidney_ml: float
    tumors: List[Tumor] = field(default_factory=list)
    ignored_tumor_fragments: int = 0
    cysts_ml: List[float] = field(default_factory=list)  # volume of each cyst, largest first
    ignored_cyst_fragments: int = 0


def _hull_vertices(points: np.ndarray) -> np.ndarray:
    try:
        return points[ConvexHull(points).vertices]
    except QhullError:  # too few, collinear or coplanar points: keep them all
        return points


def max_extent(centres_mm: np.ndarray, voxel_mm: Sequence[float]) -> float:
    """Largest distance (mm) between corners of voxels centred at ``centres_mm`` (N x d)."""
    points = _hull_vertices(centres_mm) if len(centres_mm) > 4 * centres_mm.shape[1] else centres_mm
    corners = np.array(list(itertools.product(*[(-v / 2, v / 2) for v in voxel_mm])))
    points = _hull_vertices((points[:, None, :] + corners[None]).reshape(-1, centres_mm.shape[1]))
    return float(pdist(points).max())


def tumor_diameters(mask: np.ndarray, spacing: Sequence[float], axial_axis: int):
    """(max 3D diameter, max axial diameter) in mm of a (cropped) boolean region."""
    spacing = np.asarray(spacing, float)
    diameter_3d = max_extent(np.argwhere(surface_voxels(mask)) * spacing, spacing)
    in_plane = [a for a in range(3) if a != axial_axis]
    axial = 0.0
    for k in np.flatnonzero(mask.any(axis=tuple(in_plane))):
        section = np.take(mask, k, axis=axial_axis)
        axial = max(axial, max_extent(np.argwhere(surface_voxels(section)) * spacing[in_plane], spacing[in_plane]))
    return diameter_3d, axial


def lesions(mask: np.ndarray, voxel_ml: float, min_ml: float):
    """The 26-connected components of ``mask`` of at least ``min_ml``: a list of (bounding box, component mask
    in it, volume in mL), and the number of smaller components (fragments)."""
    components, _ = label(mask, FULL_CONNECTIVITY)
    found, fragments = [], 0
    for c, box in enumerate(find_objects(components), 1):
        component = components[box] == c
        volume_ml = int(component.sum()) * voxel_ml
        if volume_ml < min_ml:
            fragments += 1
        else:
            found.append((box, component, volume_ml))
    return found, fragments


def measure_segmentation(seg: sitk.Image, case: str, min_tumor_ml: float = 0.1,
                         min_cyst_ml: float = 0.1) -> CaseMorphometry:
    """Morphometry of one label map (0 background, 1 kidney, 2 tumor, and in KiTS21/23 3 cyst)."""
    labels = sitk.GetArrayFromImage(seg)
    spacing = np.array(seg.GetSpacing()[::-1])  # array axes are SimpleITK's index axes reversed
    direction = np.array(seg.GetDirection()).reshape(3, 3)[:, ::-1]  # column a: physical direction of array axis a
    voxel_ml = float(np.prod(spacing)) / 1000
    foreground = labels > 0
    if not foreground.any():
        return CaseMorphometry(case, 0.0, 0.0)
    box = find_objects(foreground.astype(np.uint8))[0]
    labels, foreground = labels[box], foreground[box]
    offset = np.array([s.start for s in box], float)

    def physical_x(index) -> float:
        return float(seg.GetOrigin()[0] + direction[0] @ ((np.asarray(index) + offset) * spacing))

    components, count = label(foreground, FULL_CONNECTIVITY)
    sizes = np.bincount(components.ravel())[1:]
    centres_x = [physical_x(c) for c in center_of_mass(foreground, components, range(1, count + 1))]
    midline = physical_x((np.array(seg.GetSize()[::-1]) - 1) / 2 - offset)
    if count > 1:
        first, second = np.argsort(sizes)[::-1][:2]
        if (centres_x[first] - midline) * (centres_x[second] - midline) < 0:
            midline = (centres_x[first] + centres_x[second]) / 2
    side_of = {c + 1: ('left' if x > midline else 'right') for c, x in enumerate(centres_x)}

    kidney_voxels = np.bincount(components[labels == 1], minlength=count + 1)
    volume = {s: sum(int(kidney_voxels[c]) for c, side in side_of.items() if side == s) * voxel_ml
              for s in ('left', 'right')}
    result = CaseMorphometry(case, volume['left'], volume['right'])

    axial_axis = int(np.argmax(np.abs(direction[2])))  # the array axis along the patient's head-feet axis
    tumors, result.ignored_tumor_fragments = lesions(labels == 2, voxel_ml, min_tumor_ml)
    for tumor_box, mask, volume_ml in tumors:
        first_voxel = tuple(int(i) + s.start for i, s in zip(np.argwhere(mask)[0], tumor_box))
        diameter_3d, axial = tumor_diameters(mask, spacing, axial_axis)
        result.tumors.append(Tumor(side_of[int(components[first_voxel])], volume_ml, diameter_3d / 10, axial / 10))
    result.tumors.sort(key=lambda tumor: -tumor.volume_ml)
    cysts, result.ignored_cyst_fragments = lesions(labels == 3, voxel_ml, min_cyst_ml)
    result.cysts_ml = sorted((volume_ml for _, _, volume_ml in cysts), reverse=True)
    return result


def _measure_file(args) -> CaseMorphometry:
    case, path, min_tumor_ml, min_cyst_ml = args
    return measure_segmentation(read_label_map(path, case, KITS23), case, min_tumor_ml, min_cyst_ml)


def _describe_case(result: CaseMorphometry) -> str:
    return f'{result.case}: {len(result.tumors)} tumor(s), {len(result.cysts_ml)} cyst(s)'


def measure_folder(seg_dir: Path, min_tumor_ml: float = 0.1, num_processes: int = 1,
                   log: Optional[Callable[[str], None]] = None, min_cyst_ml: float = 0.1) -> List[CaseMorphometry]:
    """Morphometry of every segmentation in ``seg_dir`` (nnU-Net flat or KiTS layout), by case id."""
    files = find_segmentations(Path(seg_dir))
    jobs = [(case, path, min_tumor_ml, min_cyst_ml) for case, path in files.items()]
    return map_jobs(_measure_file, jobs, num_processes, log=log, describe=_describe_case)


def report_rows(results: Sequence[CaseMorphometry]) -> List[dict]:
    """One row per tumor (largest first); a case without tumors gets one row with empty tumor fields."""
    rows = []
    for r in results:
        case_fields = {'case': r.case, 'left_kidney_ml': round(r.left_kidney_ml, 2),
                       'right_kidney_ml': round(r.right_kidney_ml, 2), 'tumor_count': len(r.tumors),
                       'cyst_count': len(r.cysts_ml), 'cyst_ml': round(sum(r.cysts_ml, 0.0), 2)}
        if not r.tumors:
            rows.append(dict(case_fields, tumor='', tumor_side='', tumor_ml='', tumor_max_diameter_3d_cm='',
                             tumor_max_axial_diameter_cm=''))
        for i, t in enumerate(r.tumors, 1):
            rows.append(dict(case_fields, tumor=i, tumor_side=t.side, tumor_ml=round(t.volume_ml, 3),
                             tumor_max_diameter_3d_cm=round(t.max_diameter_3d_cm, 3),
                             tumor_max_axial_diameter_cm=round(t.max_axial_diameter_cm, 3)))
    return rows


def write_report(results: Sequence[CaseMorphometry], path: Path) -> None:
    with atomic_output(Path(path)) as tmp, open(tmp, 'w', newline='') as f:
        writer = csv.DictWriter(f, CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(report_rows(results))
