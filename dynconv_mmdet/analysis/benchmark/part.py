"""What every part of a run shares: the run's state and the steps of a
part.

A run (:func:`~.run.run`) goes through its parts in the order of
:data:`~.run.PARTS`, one stage after the other: it builds every part, asks
each for a note should it have no rows, checks every part (``ours`` vs
``released``), compiles every part (only the compiled part has anything to
compile), and only then times and reports the parts that were asked for.
"""
import argparse
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from .exactness import has_released
from .timing import Step, make_step

Log = Callable[[str], None]


@dataclass
class Run:
    """The state of one run, shared by its parts.

    Attributes:
        args: The command line (:func:`~.command.parse_args`).
        device: Where everything is built and timed.
        log: Progress messages (stderr).
        stack: Contexts that last until the end of the run.
        notes: Printed after the exactness lines (and with the JSON).
        no_reference: Modules whose dynamic convs have no released
            formulation (their ``released`` cells read ``-``).
        start: ``time.perf_counter()`` when the checks started.
    """
    args: argparse.Namespace
    device: torch.device
    log: Log
    stack: ExitStack
    notes: List[str] = field(default_factory=list)
    no_reference: List[str] = field(default_factory=list)
    start: float = 0.0

    @property
    def repeats(self) -> Dict[str, int]:
        """Timed runs per mode."""
        return dict(train=self.args.train_repeats, infer=self.args.repeats)

    @property
    def memory(self) -> bool:
        """Whether the memory pass runs."""
        return not self.args.no_memory


class Part:
    """One part of a run.

    Args:
        run (Run): The run.
        timed (bool): Whether the part's rows are timed and reported (a
            part may be built and checked only for another part's sake).
    """
    #: The name of ``--only`` and the key of the rows in the JSON output.
    name = ''

    def __init__(self, run: Run, timed: bool = True) -> None:
        self.run = run
        self.timed = timed

    def build(self) -> None:
        """Build the modules (raises :class:`~.presets.UsageError` for a
        bad command line)."""

    def empty_note(self) -> Optional[str]:
        """A note when the part was asked for but has no rows."""
        return None

    def check(self) -> List[Dict]:
        """The exactness checks of ``ours`` vs ``released`` (raises
        :class:`~.exactness.ExactnessError`)."""
        return []

    def compile(self) -> List[Dict]:
        """Compile, and check the compiled modules against their eager
        selves."""
        return []

    def time(self) -> List[Dict]:
        """Time the part: its rows."""
        raise NotImplementedError

    def report(self, rows: List[Dict]) -> List[str]:
        """The headings and tables of the rows, each printed as one
        paragraph."""
        raise NotImplementedError


def variant_steps(static: nn.Module, dynamic: Dict[str, nn.Module], x,
                  mode: str) -> Dict[Tuple[str, str], Step]:
    """The static module once, then released (when it has one) and ours
    per dynamic variant."""
    steps = {('static', 'static'): make_step(static, x, mode)}
    for variant, module in dynamic.items():
        if has_released(module):
            steps[(variant, 'released')] = make_step(module, x, mode, True)
        steps[(variant, 'ours')] = make_step(module, x, mode)
    return steps


def variant_rows(res: Dict, peaks: Dict, variants: Sequence[str],
                 **fields) -> List[Dict]:
    """One row per variant of :func:`variant_steps`' timings, with
    ``fields``."""
    rows = []
    for variant in variants:
        keys = dict(
            static=('static', 'static'),
            released=(variant, 'released'),
            ours=(variant, 'ours'))
        keys = {impl: key for impl, key in keys.items() if key in res}
        row = dict(
            fields,
            kind=variant,
            times={
                impl: res[key]
                for impl, key in keys.items()
            })
        if peaks:
            row['peak_mib'] = {impl: peaks[key] for impl, key in keys.items()}
        rows.append(row)
    return rows
