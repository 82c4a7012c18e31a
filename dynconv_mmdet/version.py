"""Version of the plugin and the versions of its stack it supports.

:data:`REQUIREMENTS` is the one place the supported ranges are written:
``setup.py`` turns it into ``install_requires`` and ``import dynconv_mmdet``
checks the installed packages against it. The ranges are what the code
needs and what was tested (torch 2.14.1, mmengine 0.10.7, mmcv 2.1.0,
mmdet 3.3.0, mmpretrain 1.2.0 on Python 3.11): torch >= 2.7 for
``torch.compiler.is_exporting`` and for ``torch.load``'s safe default with
``torch.serialization.add_safe_globals`` (2.6).
"""
__version__ = '0.1.0'

#: distribution -> (minimum inclusive, maximum exclusive, what to install)
REQUIREMENTS = {
    'torch': ('2.7.0', '2.15.0', 'torch==2.14.1'),
    'mmengine': ('0.10.0', '0.11.0', 'mmengine==0.10.7'),
    'mmcv': ('2.0.0', '2.2.0', 'mmcv==2.1.0 (compiled with ops)'),
    'mmdet': ('3.0.0', '3.4.0', 'mmdet==3.3.0'),
}

#: Optional: the classification project (``pip install .[classification]``);
#: deployment to ONNX Runtime (``pip install .[deploy]``, then
#: ``pip install --no-deps mmdeploy==1.3.1``: mmdeploy 1.3.1 pins
#: ``protobuf<=3.20.2``, which no onnxruntime of our Python resolves beside,
#: so it is installed without its pins and ``deploy`` lists what it really
#: imports; README, "Deployment").
OPTIONAL_REQUIREMENTS = {
    'classification': {
        'mmpretrain': ('1.0.0', '1.3.0', 'mmpretrain==1.2.0')
    },
    'deploy': {
        'onnx': ('1.13.0', '2.0.0', 'onnx==1.23.2'),
        'onnxruntime': ('1.16.0', '2.0.0', 'onnxruntime==1.32.0'),
        'aenum': ('3.0.0', '4.0.0', 'aenum==3.1.17'),
        'prettytable': ('3.0.0', '4.0.0', 'prettytable==3.19.0'),
    },
}
#: Installed without its dependencies (``pip install --no-deps``) by
#: ``tools/env/setup_env.sh``; see :data:`OPTIONAL_REQUIREMENTS`.
MMDEPLOY_NO_DEPS = 'mmdeploy==1.3.1'

#: Python versions the package supports.
PYTHON_REQUIRES = '>=3.9'


def requirement_strings(table: dict) -> list:
    """``['name>=low,<high', ...]`` for a table like :data:`REQUIREMENTS`."""
    return [f'{name}>={low},<{high}' for name, (low, high, _) in table.items()]
