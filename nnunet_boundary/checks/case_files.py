"""nnU-Net's file naming: ``CASE_XXXX<file_ending>``, one file per input channel ``XXXX``."""
import re
from pathlib import Path
from typing import Dict, List, Tuple

from nnunet_boundary.errors import NnUNetBoundaryError


def group_channel_files(folder: Path, file_ending: str) -> Tuple[Dict[str, Dict[int, Path]], List[Path]]:
    """The files of ``folder`` ending in ``file_ending``, grouped as ``{case: {channel: path}}``, and
    those whose name lacks the 4-digit channel index nnU-Net requires."""
    pattern = re.compile(r'(.+)_(\d{4})' + re.escape(file_ending))
    cases: Dict[str, Dict[int, Path]] = {}
    unindexed = []
    for path in sorted(Path(folder).iterdir()):
        if not path.name.endswith(file_ending):
            continue
        match = pattern.fullmatch(path.name)
        if match is None:
            unindexed.append(path)
        else:
            cases.setdefault(match.group(1), {})[int(match.group(2))] = path
    return cases, unindexed


def channel_count_problems(cases: Dict[str, Dict[int, Path]], num_channels: int, file_ending: str) -> List[str]:
    """One line per case whose channel files are not exactly ``_0000`` ... ``_{num_channels - 1:04d}``."""
    expected = list(range(num_channels))
    suffixes = lambda channels: ', '.join(f'_{c:04d}{file_ending}' for c in channels) or 'none'
    return [f"{case}: has channel files {suffixes(sorted(found))} but the model expects {num_channels} channel(s) "
            f"{suffixes(expected)} (dataset.json 'channel_names')"
            for case, found in cases.items() if sorted(found) != expected]


def require_channel_files(folder: Path, file_ending: str, num_channels: int) -> Dict[str, Dict[int, Path]]:
    """:func:`group_channel_files`, raising if a file lacks its channel index, if the folder holds no
    case, or if any case's channels differ from ``num_channels``."""
    cases, unindexed = group_channel_files(folder, file_ending)
    if unindexed:
        names = ', '.join(p.name for p in unindexed[:5]) + (' ...' if len(unindexed) > 5 else '')
        raise NnUNetBoundaryError(
            f"{folder}: {len(unindexed)} file(s) without the channel index nnU-Net needs ({names}); name them "
            f"CASE_0000{file_ending} (and CASE_0001{file_ending} ... for further channels)")
    if not cases:
        raise NnUNetBoundaryError(f"{folder}: no CASE_XXXX{file_ending} files (dataset.json 'file_ending' is "
                                  f"'{file_ending}')")
    problems = channel_count_problems(cases, num_channels, file_ending)
    if problems:
        raise NnUNetBoundaryError(f"{folder}: wrong input channels in {len(problems)} case(s):\n  "
                                  + '\n  '.join(problems))
    return cases
