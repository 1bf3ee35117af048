"""``nnunet_boundary_overlay``: PNG of an axial CT slice with ground truth and prediction outlines."""
import argparse
from pathlib import Path

from nnunet_boundary.cli.errors import exits_cleanly
from nnunet_boundary.kits19.io import KiTS19Error, geometry_mismatch, read_image, read_label_map
from nnunet_boundary.kits19.overlay import lps_array, save_overlay


def _axial_arrays(image_path: Path, label_paths):
    """LPS-oriented (z, y, x) arrays of the image and label maps, after checking they share one grid."""
    image = read_image(image_path, image_path.name)
    label_maps = [read_label_map(path, path.name) for path in label_paths]
    for path, labels in zip(label_paths, label_maps):
        mismatch = geometry_mismatch(image, labels)
        if mismatch:
            raise KiTS19Error(f'{path} and {image_path} differ in {mismatch}; pass a label map of this image')
    array, spacing = lps_array(image)
    return [array] + [lps_array(labels)[0] for labels in label_maps], spacing


def _case_name(path: Path) -> str:
    """``case_00007`` for KiTS19 ``case_00007/segmentation.nii.gz`` and nnU-Net ``case_00007.nii.gz`` alike."""
    return path.parent.name if path.name.startswith('segmentation.') else path.name.split('.')[0]


@exits_cleanly
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description="Save a PNG of one axial slice (CT window -200..300 HU, radiological view) with kidney (red) "
                    "and tumor (green) filled outlines: ground truth, and the prediction next to it. By default "
                    "the slice with the largest ground-truth tumor cross-section.")
    parser.add_argument('image', type=Path, help='CT image (.nii.gz)')
    parser.add_argument('seg', type=Path, help='ground-truth label map on the same grid (0/1/2)')
    parser.add_argument('--pred', type=Path, help='predicted label map on the same grid')
    parser.add_argument('--boundary', action='store_true', help='add boundary-map panels (region edges)')
    parser.add_argument('--slice', type=int, help='axial slice index (in LPS order, inferior first)')
    parser.add_argument('-o', '--output', type=Path, required=True, help='PNG to write')
    args = parser.parse_args(argv)
    arrays, spacing = _axial_arrays(args.image, [args.seg] + ([args.pred] if args.pred else []))
    image, gt, pred = arrays[0], arrays[1], arrays[2] if args.pred else None
    if args.slice is not None and not 0 <= args.slice < gt.shape[0]:
        raise KiTS19Error(f'--slice {args.slice} is outside 0..{gt.shape[0] - 1} for {args.seg}')
    shown = save_overlay(image, gt, pred, args.output, spacing=spacing, title=_case_name(args.seg),
                         slice_index=args.slice, boundary=args.boundary)
    print(f'{args.output}: axial slice {shown}')
