# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""The authors' releases, by the names our converters take, each with the
key map that reads its backbones.

A released detector's release is the one whose key map recognises its
backbone first (highest priority): ``'kw'`` when it holds KernelWarehouse
warehouses, ``'fdconv'`` when it holds FDConv spectra (``dft_weight``), else
``'odconv'`` (the official layout recognises any).
"""
from typing import Dict, Iterable, NamedTuple

from ..keys import StateDict
from .base import KeyMap
from .fdconv import FDCONV
from .kernel_warehouse import KERNEL_WAREHOUSE
from .official import OFFICIAL


class Release(NamedTuple):
    """One release of checkpoints.

    Attributes:
        name (str): How converters and their command lines name it.
        key_map (KeyMap): The layout of its backbones.
    """
    name: str
    key_map: KeyMap


#: Official ODConv (github OSVAI/ODConv).
ODCONV_RELEASE = Release('odconv', OFFICIAL)
#: Official KernelWarehouse (github OSVAI/KernelWarehouse).
KW_RELEASE = Release('kw', KERNEL_WAREHOUSE)
#: Official FDConv (github Linwei-Chen/FDConv).
FDCONV_RELEASE = Release('fdconv', FDCONV)

#: ``name -> release``.
RELEASE_KEY_MAPS: Dict[str, Release] = {
    release.name: release
    for release in (ODCONV_RELEASE, KW_RELEASE, FDCONV_RELEASE)
}


def recognise_release(state_dict: StateDict,
                      archs: Dict[str, Iterable[str]]) -> str:
    """The name of the release whose key map recognises ``state_dict``
    first (key maps asked in decreasing priority).

    Args:
        state_dict (dict): Backbone keys of a release (no ``module.``).
        archs (dict): ``release name -> backbone archs`` it may be of.

    Raises:
        KeyError: No release recognises it.
    """
    releases = sorted(
        RELEASE_KEY_MAPS.values(), key=lambda r: -r.key_map.priority)
    for release in releases:
        if any(
                release.key_map.recognises(state_dict, arch)
                for arch in archs.get(release.name, ())):
            return release.name
    raise KeyError('no release recognises the checkpoint (known: '
                   f'{", ".join(RELEASE_KEY_MAPS)})')
