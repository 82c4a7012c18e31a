# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""The command line shared by ``tools/model_converters/*_mmdet2_detector.py``:
convert a release's MMDetection 2.x detector checkpoint with
:func:`~.convert.convert_released_detector_file` and say which configs it
loads into."""
import argparse
from typing import List, Optional

from .convert import convert_released_detector_file
from .errors import CheckpointError
from .released_detector import RELEASED_DETECTORS


def released_detector_main(release: str,
                           description: str,
                           argv: Optional[List[str]] = None,
                           default_arch: Optional[str] = None) -> int:
    """Parse ``argv`` (``src dst [--arch ARCH]``), convert, print a line.

    Args:
        release (str): The release's name in :data:`RELEASED_DETECTORS`.
        description (str): The command's help text.
        argv (list[str], optional): Arguments (default: ``sys.argv``).
        default_arch (str, optional): ``--arch`` when not given; ``None``:
            ``--arch`` is required.

    Raises:
        SystemExit: What cannot be converted, as ``error: ...``.
    """
    layouts = {
        arch: layout
        for (name, arch), layout in RELEASED_DETECTORS.items()
        if name == release
    }
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('src', help='released checkpoint (.pth)')
    parser.add_argument('dst', help='output checkpoint path')
    parser.add_argument(
        '--arch',
        default=default_arch,
        required=default_arch is None,
        choices=sorted(layouts),
        help='backbone: ' + ', '.join(f'{arch} ({layout.backbone})'
                                      for arch, layout in layouts.items()))
    args = parser.parse_args(argv)
    try:
        out = convert_released_detector_file(
            args.src, args.dst, args.arch, release=release)
    except (CheckpointError, KeyError, ValueError) as err:
        message = err.args[0] if isinstance(err, KeyError) else err
        raise SystemExit(f'error: {message}')
    meta = out['meta']
    dropped = meta.get('dropped_keys')
    dropped = f', dropped {dropped}' if dropped else ''
    print(f'{meta["detector"]} ({args.arch}): converted '
          f'{len(out["state_dict"])} tensors{dropped} -> {args.dst} (loads '
          f'into {layouts[args.arch].configs})')
    return 0
