"""Every evaluated training run's per-case test metrics, saved next to its report (``runs.json``), so a
benchmark's results outlive its work folder: the models and predictions stay in the work folder (gigabytes,
never committed), the per-case metrics the paired comparisons need are committed with the report, marked with
the commit that trained each run. A rerun in a fresh work folder trains only the rows ``runs.json`` lacks and
pairs them with the saved ones case by case -- valid only on the very same held-out cases, which the
held-out fingerprint checks (phantoms are generated deterministically, so a rebuilt dataset matches the saved one).

    python -m nnunet_boundary.benchmark.saved_runs RUNS_JSON   # the evaluated runs saved there, one per line
"""
import argparse
import hashlib
import json
from pathlib import Path
from typing import Dict

import numpy as np
import SimpleITK as sitk

from nnunet_boundary.atomic_files import write_json_atomically


def held_out_fingerprint(raw_dataset: Path) -> str:
    """SHA-256 (first 16 hex digits) over the held-out cases of an nnU-Net raw dataset: every file name in
    ``imagesTs`` and ``labelsTs`` with its voxels and geometry (not its compressed bytes, which carry no
    meaning of their own)."""
    digest = hashlib.sha256()
    for folder in ('imagesTs', 'labelsTs'):
        for path in sorted((raw_dataset / folder).glob('*.nii.gz')):
            image = sitk.ReadImage(str(path))
            digest.update(path.name.encode())
            digest.update(np.ascontiguousarray(sitk.GetArrayViewFromImage(image)).tobytes())
            digest.update(np.asarray(image.GetSpacing() + image.GetOrigin() + image.GetDirection()).tobytes())
    return digest.hexdigest()[:16]


def load_runs(path: Path, dataset: str, fingerprint: str) -> Dict[str, dict]:
    """The runs saved in ``path`` (trainer -> run), none if there is no such file; a one-line error if they
    were evaluated on other held-out cases than ``dataset``'s (``fingerprint``)."""
    if not path.is_file():
        return {}
    saved = json.loads(path.read_text())
    if (saved['dataset'], saved['fingerprint']) != (dataset, fingerprint):
        raise SystemExit(f"error: {path} holds runs evaluated on {saved['dataset']} (fingerprint "
                         f"{saved['fingerprint']}), not on this {dataset} (fingerprint {fingerprint}); "
                         f"move it away to start a new set of runs")
    return saved['runs']


def save_runs(path: Path, dataset: str, fingerprint: str, runs: Dict[str, dict]) -> None:
    write_json_atomically({'dataset': dataset, 'fingerprint': fingerprint, 'runs': runs}, path)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('runs_json', type=Path, help="a report folder's runs.json (need not exist)")
    args = parser.parse_args(argv)
    if args.runs_json.is_file():
        runs = json.loads(args.runs_json.read_text())['runs']
        print('\n'.join(trainer for trainer, run in runs.items() if run['per_case'] is not None))


if __name__ == '__main__':
    main()
