"""dynconv-mmdet: dynamic convolutions (CondConv, DyConv, ODConv,
KernelWarehouse) for MMDetection 3.x.

Importing the package registers the conv layers in mmengine's root
``MODELS`` (visible from every OpenMMLab scope), the backbones in mmdet's
registries, the temperature-annealing hook in
mmengine's root ``HOOKS``, and allow-lists the objects mmengine checkpoints
need for ``weights_only=True`` loading, and makes every model that holds
one of our backbones refuse weights that do not fit it
(:mod:`dynconv_mmdet.checkpoint.guard`).

Every scheme of mmengine's checkpoint loading (local files, URLs,
``torchvision://``, ``open-mmlab://``, ...) then reads through the safe
reader (:mod:`dynconv_mmdet.checkpoint.schemes`).
"""
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _installed_version

from packaging.version import Version

from .version import REQUIREMENTS, __version__


def _check_versions() -> None:
    problems = []
    for name, (low, high, advice) in REQUIREMENTS.items():
        try:
            found = _installed_version(name)
        except PackageNotFoundError:
            problems.append(f'{name} is not installed; install {advice}')
            continue
        # local build tags (2.14.1+cu130) compare by their release
        if not Version(low) <= Version(Version(found).base_version) < \
                Version(high):
            problems.append(f'{name} {found} is not supported (need >= {low}'
                            f', < {high}); install {advice}')
    if problems:
        raise ImportError(
            'dynconv_mmdet cannot run with this environment:\n  ' +
            '\n  '.join(problems) +
            '\nThe README\'s set-up (bash tools/env/setup_env.sh) installs '
            'the supported stack.')


_check_versions()

from . import datasets, engine, models  # noqa: E402,F401
from .checkpoint import install_load_guard  # noqa: E402
from .checkpoint import register_safe_globals  # noqa: E402
from .checkpoint.schemes import register_safe_schemes  # noqa: E402

register_safe_globals()
register_safe_schemes()
install_load_guard()

__all__ = ['__version__']
