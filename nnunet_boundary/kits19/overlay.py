"""Axial CT slices with kidney (red) and tumor (green) outlines: ground truth next to prediction.

Kidney outlines follow the KiTS19 kidney region (labels 1+2), tumor outlines label 2; the fill
shows label 1 in red and label 2 in green.

Arrays are (z, y, x) with y running anterior -> posterior and x patient right -> left, so the
slices are shown in the radiological convention (anterior up, patient right on the viewer's
left). The optional boundary panels show the morphological gradient (dilation minus erosion)
of the kidney and tumor regions: the edges a boundary-aware network is trained to find.
"""
from pathlib import Path
from typing import Optional, Sequence, Tuple

import matplotlib
import numpy as np
import SimpleITK as sitk
from scipy.ndimage import binary_dilation, binary_erosion

from nnunet_boundary.atomic_files import atomic_output

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  (backend first)

CT_WINDOW = (-200, 300)
REGION_COLOURS = {'kidney': (1.0, 0.15, 0.15), 'tumor': (0.1, 0.9, 0.2)}


def lps_array(image: sitk.Image) -> Tuple[np.ndarray, Tuple[float, float, float]]:
    """(z, y, x) array and spacing of an image reoriented to LPS, the layout :func:`save_overlay` expects.

    Needed for files in KiTS19 geometry, whose plain SimpleITK array has the left-right axis first.
    """
    oriented = sitk.DICOMOrient(image, 'LPS')
    return sitk.GetArrayFromImage(oriented), tuple(oriented.GetSpacing()[::-1])


def default_slice(gt: np.ndarray) -> int:
    """Axial slice with the largest tumor cross-section, else the largest kidney one, else the middle."""
    for region in (gt == 2, gt > 0):
        areas = region.sum(axis=(1, 2))
        if areas.any():
            return int(np.argmax(areas))
    return gt.shape[0] // 2


def region_boundary(region: np.ndarray) -> np.ndarray:
    """Morphological gradient of a 2D region: its inner and outer one-pixel rim."""
    return binary_dilation(region) & ~binary_erosion(region)


def _draw_labels(ax, ct_slice, labels, alpha, extent):
    ax.imshow(ct_slice, cmap='gray', vmin=CT_WINDOW[0], vmax=CT_WINDOW[1], extent=extent, interpolation='nearest')
    fill = np.zeros(labels.shape + (4,))
    fill[labels == 1] = REGION_COLOURS['kidney'] + (alpha,)
    fill[labels == 2] = REGION_COLOURS['tumor'] + (alpha,)
    ax.imshow(fill, extent=extent, interpolation='nearest')
    for name, region in (('kidney', labels > 0), ('tumor', labels == 2)):
        if region.any():
            ax.contour(region.astype(float), levels=[0.5], colors=[REGION_COLOURS[name]], linewidths=1.0,
                       extent=extent, origin='upper')


def _draw_boundary(ax, labels, extent):
    rgb = np.zeros(labels.shape + (3,))
    for name, region in (('kidney', labels > 0), ('tumor', labels == 2)):
        rgb[region_boundary(region)] = REGION_COLOURS[name]
    ax.imshow(rgb, extent=extent, interpolation='nearest')


def save_overlay(image: np.ndarray, gt: np.ndarray, pred: Optional[np.ndarray], out_png: Path,
                 spacing: Optional[Sequence[float]] = None, title: Optional[str] = None,
                 slice_index: Optional[int] = None, boundary: bool = False, alpha: float = 0.3,
                 panel_inches: float = 4.0, dpi: int = 100) -> int:
    """Write a PNG of one axial slice: ground truth (and prediction, if given) over the CT.

    Args:
        image, gt, pred: (z, y, x) arrays; CT in HU, labels 0 background, 1 kidney, 2 tumor.
        spacing: (z, y, x) voxel size in mm, for the pixel aspect ratio (square pixels if None).
        slice_index: axial slice; default the largest tumor cross-section of ``gt``.
        boundary: add boundary-map panels (kidney and tumor region edges).

    Returns:
        The slice index shown.
    """
    image, gt = np.asarray(image), np.asarray(gt)
    if image.shape != gt.shape or (pred is not None and np.shape(pred) != gt.shape):
        shapes = f'image {image.shape}, ground truth {gt.shape}' + ('' if pred is None else f', pred {np.shape(pred)}')
        raise ValueError(f'overlay needs arrays of one shape; got {shapes}')
    k = default_slice(gt) if slice_index is None else int(slice_index)
    if not 0 <= k < gt.shape[0]:
        raise ValueError(f'slice {k} is outside 0..{gt.shape[0] - 1}')
    sy, sx = (1.0, 1.0) if spacing is None else (float(spacing[1]), float(spacing[2]))
    extent = (0, gt.shape[2] * sx, gt.shape[1] * sy, 0)
    panels = [('ground truth', gt)] + ([] if pred is None else [('prediction', np.asarray(pred))])
    boundaries = [(f'boundary map, {name}', labels) for name, labels in panels] if boundary else []
    height = panel_inches * (gt.shape[1] * sy) / (gt.shape[2] * sx)
    n = len(panels) + len(boundaries)
    fig, axes = plt.subplots(1, n, figsize=(panel_inches * n, height + (0.4 if title else 0.25)), dpi=dpi,
                             squeeze=False)
    for ax, (name, labels) in zip(axes[0], panels):
        _draw_labels(ax, image[k], labels[k], alpha, extent)
        ax.set_title(name, fontsize=9)
    for ax, (name, labels) in zip(axes[0][len(panels):], boundaries):
        _draw_boundary(ax, labels[k], extent)
        ax.set_title(name, fontsize=9)
    for ax in axes[0]:
        ax.set_axis_off()
    fig.suptitle(f'{title + ": " if title else ""}axial slice {k}', fontsize=10)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.9 if title else 0.92, wspace=0.02)
    out_png = Path(out_png)
    with atomic_output(out_png) as tmp:
        fig.savefig(tmp, format='png', dpi=dpi)
    plt.close(fig)
    return k
