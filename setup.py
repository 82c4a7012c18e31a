"""Packaging; metadata in setup.cfg, version bounds in
dynconv_mmdet/version.py (read without importing the package)."""
import os
import os.path as osp
import platform
import shutil
import sys
from setuptools import setup

ROOT = osp.dirname(osp.abspath(__file__))
#: What OpenMMLab tools read from an installed package's ``.mim`` folder:
#: ``mim search`` the model index, mmengine the ``dynconv_mmdet::`` configs,
#: ``mim train`` / ``mim test`` the tools.
MIM_FILES = ('configs', 'tools', 'model-index.yml')


def read_version_module() -> dict:
    path = osp.join(osp.dirname(osp.abspath(__file__)), 'dynconv_mmdet',
                    'version.py')
    namespace: dict = {}
    with open(path, encoding='utf-8') as f:
        exec(compile(f.read(), path, 'exec'), namespace)
    return namespace


def add_mim_extension() -> None:
    """Put the configs, the tools and the model index inside the package, as
    ``dynconv_mmdet/.mim/`` (the layout of mmdet's ``add_mim_extension``).

    An editable install (``develop`` / ``editable_wheel``) links the
    originals, so they stay current; a wheel or an sdist copies them
    (``MANIFEST.in`` takes them into the archive). Other commands leave the
    folder alone; building from an sdist, whose root has no ``configs/``,
    keeps the copies it ships.
    """
    commands = set(sys.argv[1:])
    if commands & {'develop', 'editable_wheel'}:
        mode = 'copy' if platform.system() == 'Windows' else 'symlink'
    elif commands & {'sdist', 'bdist_wheel'}:
        mode = 'copy'
    else:
        return
    mim_dir = osp.join(ROOT, 'dynconv_mmdet', '.mim')
    os.makedirs(mim_dir, exist_ok=True)
    for name in MIM_FILES:
        src = osp.join(ROOT, name)
        if not osp.exists(src):
            continue
        dst = osp.join(mim_dir, name)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_dir), dst)
        elif osp.isdir(src):
            shutil.copytree(
                src,
                dst,
                ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        else:
            shutil.copyfile(src, dst)


add_mim_extension()
version = read_version_module()
setup(
    python_requires=version['PYTHON_REQUIRES'],
    install_requires=version['requirement_strings'](version['REQUIREMENTS'])
    + ['numpy'],
    extras_require={
        name: version['requirement_strings'](table)
        for name, table in version['OPTIONAL_REQUIREMENTS'].items()
    })
