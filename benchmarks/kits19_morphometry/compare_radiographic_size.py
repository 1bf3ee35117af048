"""Compare the largest tumor's measured diameters with KiTS19's ``radiographic_size``.

Reads the CSV written by ``nnunet_boundary_morphometry`` and the KiTS19 ``kits.json`` (Heller et
al., arXiv:1904.00445), writes one row per case (no label data) and prints Pearson's r, the median
absolute difference and the median signed difference (measured - radiographic) in cm, for the
maximum axial and the maximum 3D diameter of the largest tumor.
"""
import argparse
import csv
import json
from pathlib import Path

import numpy as np


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('report_csv', type=Path, help='CSV from nnunet_boundary_morphometry')
    parser.add_argument('kits_json', type=Path, help='KiTS19 data/kits.json')
    parser.add_argument('-o', '--output', type=Path, required=True, help='per-case CSV to write')
    args = parser.parse_args(argv)
    radiographic = {r['case_id']: r['radiographic_size'] for r in json.loads(args.kits_json.read_text())}
    largest = {}
    for row in csv.DictReader(open(args.report_csv)):
        if row['tumor'] == '1' and radiographic.get(row['case']) is not None:
            largest[row['case']] = row
    rows = [{'case': c, 'radiographic_size_cm': radiographic[c], 'largest_tumor_ml': r['tumor_ml'],
             'max_axial_diameter_cm': r['tumor_max_axial_diameter_cm'],
             'max_diameter_3d_cm': r['tumor_max_diameter_3d_cm'], 'tumor_count': r['tumor_count']}
            for c, r in sorted(largest.items())]
    with open(args.output, 'w', newline='') as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    reference = np.array([float(r['radiographic_size_cm']) for r in rows])
    print(f'cases: {len(rows)}')
    for key in ('max_axial_diameter_cm', 'max_diameter_3d_cm'):
        measured = np.array([float(r[key]) for r in rows])
        difference = measured - reference
        print(f'{key}: pearson_r={np.corrcoef(measured, reference)[0, 1]:.3f} '
              f'median_abs_diff_cm={np.median(np.abs(difference)):.2f} '
              f'median_diff_cm={np.median(difference):+.2f}')


if __name__ == '__main__':
    main()
