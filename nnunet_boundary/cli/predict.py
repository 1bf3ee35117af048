"""``nnunet_boundary_predict``: ``nnUNetv2_predict`` for the common case, with checks up front.

Before a model is loaded it checks nnU-Net's results folder variable, ``nnUNet_extTrainer`` for
our trainers, the model folder and every requested fold's checkpoint, and that every input case
has exactly the channels the model was trained with. With ``--continue_prediction`` it first
deletes half-written outputs of an interrupted run; it never writes into a dataset's ``labels*``
folder and replaces existing outputs only with ``--overwrite`` (see
:mod:`nnunet_boundary.checks.prediction_outputs`). Then nnU-Net's ``nnUNetPredictor`` runs
in-process exactly as ``nnUNetv2_predict`` would run it.
"""
import argparse
import json
import multiprocessing
from pathlib import Path

import torch

from nnunet_boundary.checks.case_files import require_channel_files
from nnunet_boundary.checks.model_folder import require_fold_checkpoints, require_trainer_lookup
from nnunet_boundary.checks.prediction_outputs import remove_incomplete_predictions, require_safe_output_folder
from nnunet_boundary.cli.errors import exits_cleanly
from nnunet_boundary.environment import require_nnunet_paths
from nnunet_boundary.errors import NnUNetBoundaryError
from nnunet_boundary.planning.templates import PLANS_NAME


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Predict with a trained BoundaryTrainer (or any nnU-Net) model: nnUNetv2_predict's common "
                    "options, with the model folder, its folds, the trainer lookup and the input channels checked "
                    "before anything is loaded, and half-written outputs of an interrupted run redone with "
                    "--continue_prediction.")
    parser.add_argument('-i', required=True, help='input folder of CASE_XXXX<file_ending> images')
    parser.add_argument('-o', required=True, help='output folder (created if missing)')
    parser.add_argument('-d', required=True, help='dataset name or ID')
    parser.add_argument('-c', default='3d_fullres', help='configuration (default 3d_fullres)')
    parser.add_argument('-tr', default='BoundaryTrainer', help='trainer class (default BoundaryTrainer)')
    parser.add_argument('-p', default=PLANS_NAME, help=f'plans identifier (default {PLANS_NAME})')
    parser.add_argument('-f', nargs='+', default=['0', '1', '2', '3', '4'],
                        help="folds to ensemble (default 0 1 2 3 4; 'all' for a model trained on all cases)")
    parser.add_argument('-step_size', type=float, default=0.5, help='sliding-window step, fraction of the patch')
    parser.add_argument('--disable_tta', action='store_true', help='no mirroring test-time augmentation')
    parser.add_argument('-chk', default='checkpoint_final.pth', help='checkpoint file name in each fold folder')
    parser.add_argument('-npp', type=int, default=3, help='preprocessing processes (0 with -nps 0: sequential)')
    parser.add_argument('-nps', type=int, default=3, help='segmentation export processes')
    parser.add_argument('-device', default='cuda', choices=('cuda', 'cpu', 'mps'), help='device (default cuda)')
    parser.add_argument('--continue_prediction', action='store_true',
                        help='keep complete outputs of an earlier run, redo missing and half-written ones')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace outputs that already exist in -o (without it, existing outputs are an error)')
    parser.add_argument('--save_probabilities', action='store_true', help='also write .npz probabilities')
    parser.add_argument('--disable_progress_bar', action='store_true', help='no progress bar')
    args = parser.parse_args(argv)
    if not all(f == 'all' or f.isdigit() for f in args.f):
        parser.error(f"-f takes fold numbers separated by spaces (e.g. -f 0 1 2 3 4) or 'all', got {' '.join(args.f)}")
    args.f = [f if f == 'all' else int(f) for f in args.f]
    return args


def model_folder(dataset: str, trainer: str, plans: str, configuration: str) -> Path:
    from nnunetv2.utilities.file_path_utilities import get_output_folder
    try:
        return Path(get_output_folder(int(dataset) if dataset.isdigit() else dataset, trainer, plans, configuration))
    except RuntimeError as e:
        raise NnUNetBoundaryError(f"dataset {dataset}: {str(e).splitlines()[0]}") from None


def device_from_name(name: str) -> torch.device:
    """The device, with nnU-Net's thread settings for it (as in ``nnUNetv2_predict``)."""
    if name == 'cuda':
        if not torch.cuda.is_available():
            raise NnUNetBoundaryError("-device cuda: no CUDA device is available; use -device cpu")
        torch.set_num_threads(1)
        torch.set_num_interop_threads(1)
    elif name == 'cpu':
        torch.set_num_threads(multiprocessing.cpu_count())
    return torch.device(name)


@exits_cleanly
def main(argv=None) -> None:
    args = parse_args(argv)
    require_nnunet_paths('nnUNet_results')
    require_trainer_lookup(args.tr)
    model_dir = model_folder(args.d, args.tr, args.p, args.c)
    require_fold_checkpoints(model_dir, args.f, args.chk)
    dataset_json = json.loads((model_dir / 'dataset.json').read_text())
    input_dir, output_dir = Path(args.i), Path(args.o)
    if not input_dir.is_dir():
        raise NnUNetBoundaryError(f"-i {input_dir}: no such folder")
    cases = require_channel_files(input_dir, dataset_json['file_ending'], len(dataset_json['channel_names']))
    skipped = sorted(p.name for p in input_dir.iterdir()
                     if p.is_file() and not p.name.startswith('.') and not p.name.endswith(dataset_json['file_ending']))
    if skipped:
        print(f"warning: -i {input_dir}: {len(skipped)} file(s) not ending in the model's "
              f"'{dataset_json['file_ending']}' are not predicted ({', '.join(skipped[:3])}"
              f"{', ...' if len(skipped) > 3 else ''}); convert them to predict them")
    require_safe_output_folder(output_dir, cases, dataset_json['file_ending'], args.overwrite, args.continue_prediction)
    output_dir.mkdir(parents=True, exist_ok=True)
    if args.continue_prediction:
        for line in remove_incomplete_predictions(output_dir, cases, dataset_json['file_ending']):
            print(f"removed a half-written output of an interrupted run, predicting it again: {line}")

    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    predictor = nnUNetPredictor(tile_step_size=args.step_size, use_gaussian=True, use_mirroring=not args.disable_tta,
                                perform_everything_on_device=True, device=device_from_name(args.device),
                                allow_tqdm=not args.disable_progress_bar)
    predictor.initialize_from_trained_model_folder(str(model_dir), args.f, checkpoint_name=args.chk)
    predict = dict(save_probabilities=args.save_probabilities, overwrite=not args.continue_prediction)
    if args.npp == 0 and args.nps == 0:
        predictor.predict_from_files_sequential(str(input_dir), str(output_dir), **predict)
    else:
        predictor.predict_from_files(str(input_dir), str(output_dir), num_processes_preprocessing=args.npp,
                                     num_processes_segmentation_export=args.nps, **predict)
