# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""How a load that does not fit is reported."""
from typing import List, NamedTuple, Sequence, Tuple

from ..utils.formatting import format_listing

Mismatch = Tuple[str, tuple, tuple]


class LoadReport(NamedTuple):
    """What a load found and did.

    Attributes:
        loaded (list[str]): Model keys loaded as they are.
        expanded (list[str]): Dense conv weights that initialised a dynamic
            conv (its family's :meth:`~dynconv_mmdet.models.layers.
            DynamicConv2d.init_from_dense`); backbone loading only.
        kept_init (list[str]): Model keys that keep their own value on
            purpose (the attention of a dense-initialised conv, BatchNorm
            ``num_batches_tracked`` counters).
        missing (list[str]): Model keys the checkpoint lacks.
        unexpected (list[str]): Checkpoint keys the model lacks.
        mismatched (list[tuple]): ``(key, checkpoint shape, model shape)``.
        refused (list[tuple]): ``(key, reason)``: dense weights whose conv
            family refused a dense start.
    """
    loaded: List[str]
    expanded: List[str]
    kept_init: List[str]
    missing: List[str]
    unexpected: List[str]
    mismatched: List[Mismatch]
    refused: Sequence[Tuple[str, str]] = ()

    @property
    def fits(self) -> bool:
        """Whether nothing is missing, unexpected, mis-shaped or refused."""
        return not (self.missing or self.unexpected or self.mismatched
                    or self.refused)


def format_mismatch(report: LoadReport, source: str, target: str,
                    hint: str) -> str:
    """The error message for a report that does not fit.

    Args:
        report (LoadReport): What the load found.
        source (str): The checkpoint, as the user named it.
        target (str): What it was loaded into, e.g. ``'the backbone'``.
        hint (str): What to do about it.
    """
    lines = [f'checkpoint {source} does not fit {target}:']

    def section(title: str, items: Sequence[str]) -> None:
        if items:
            lines.append(f'  {title} ({len(items)}):')
            lines.append('    ' + format_listing(items, sep='\n    '))

    # a refused dense start first: it is the cause of what is then missing
    section('dense start refused by the conv family',
            [f'{k}: {reason}' for k, reason in report.refused])
    section('missing in the checkpoint', report.missing)
    section('unexpected in the checkpoint', report.unexpected)
    section(
        'shape mismatch (key: checkpoint vs model)',
        [f'{k}: {tuple(a)} vs {tuple(b)}' for k, a, b in report.mismatched])
    lines.append(hint)
    return '\n'.join(lines)
