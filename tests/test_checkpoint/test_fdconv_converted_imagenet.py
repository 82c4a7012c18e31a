# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""The release's converted ImageNet checkpoints (``convert_to_fdconv.py``:
a dense torchvision ResNet whose block convs are stored as ``dft_weight``,
nothing of the attention) start an FDConv backbone: the spectra load as
they are, the attention and band modulation keep the family's init and are
reported so, and nothing else may be missing."""
import pytest
import torch
import torchvision
from mmdet.registry import MODELS

from dynconv_mmdet.checkpoint import CheckpointMismatchError, load_pretrained
from dynconv_mmdet.models.layers import FDConv2d
from dynconv_mmdet.models.layers.fdconv.frequency import dense_to_spectrum


def _converted_resnet18(path: str) -> dict:
    """What the release's conversion writes for a torchvision ResNet-18:
    every block conv FDConv2d converts becomes ``<conv>.dft_weight``."""
    dense = torchvision.models.resnet18().state_dict()
    fdconv = MODELS.build(
        dict(type='DynamicResNet', depth=18, preset='fdconv'))
    converted = {}
    for key, value in dense.items():
        owner = fdconv.get_submodule(key.rpartition(
            '.')[0]) if key.endswith('weight') and 'conv' in key else None
        if isinstance(owner, FDConv2d) and not owner.is_dense:
            converted[key[:-len('weight')] + 'dft_weight'] = \
                dense_to_spectrum(value, owner.param_ratio)
        else:
            converted[key] = value
    torch.save(converted, path)
    return converted


def test_converted_checkpoint_starts_the_backbone(tmp_path):
    path = str(tmp_path / 'resnet18_Convert2FDConv.pth')
    converted = _converted_resnet18(path)
    model = MODELS.build(dict(type='DynamicResNet', depth=18, preset='fdconv'))
    report = load_pretrained(model, path, arch='resnet')
    assert not (report.missing or report.mismatched or report.refused)
    spectra = [k for k in converted if k.endswith('dft_weight')]
    assert spectra and set(spectra) <= set(report.loaded)
    kept = set(report.kept_init)
    assert any('.KSM_Global.' in k for k in kept)
    assert all(
        k.endswith('num_batches_tracked') or any(
            f'.{part}.' in k for part in ('KSM_Global', 'KSM_Local', 'FBM'))
        for k in kept)
    state = model.state_dict()
    for key in spectra:
        assert torch.equal(state[key], converted[key])


def test_a_missing_spectrum_is_still_an_error(tmp_path):
    path = str(tmp_path / 'resnet18_Convert2FDConv.pth')
    converted = _converted_resnet18(path)
    dropped = next(k for k in converted if k.endswith('dft_weight'))
    del converted[dropped]
    torch.save(converted, path)
    model = MODELS.build(dict(type='DynamicResNet', depth=18, preset='fdconv'))
    with pytest.raises(
            CheckpointMismatchError, match=dropped.rpartition('.')[0]):
        load_pretrained(model, path, arch='resnet')
