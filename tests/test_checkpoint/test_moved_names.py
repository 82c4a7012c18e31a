"""Checkpoint names still import from their old places, with a warning."""
import importlib

import pytest

import dynconv_mmdet.checkpoint as checkpoint
import dynconv_mmdet.checkpoint.key_maps as key_maps
import dynconv_mmdet.checkpoint.released_detector as released_detector

MOVED = {
    'dynconv_mmdet.utils.checkpoint':
    (checkpoint, ('CheckpointError', 'mmengine_checkpoint_globals',
                  'register_safe_globals', 'safe_torch_load')),
    'dynconv_mmdet.utils': (checkpoint,
                            ('CheckpointError', 'mmengine_checkpoint_globals',
                             'register_safe_globals', 'safe_torch_load')),
    'dynconv_mmdet.models.backbones.conversion':
    (key_maps, ('MBV2_ARCH', 'convert_mmpretrain_state_dict',
                'convert_official_state_dict', 'mobilenet_v2_block_names',
                'to_backbone_state_dict')),
    'dynconv_mmdet.models.backbones.pretrained':
    (checkpoint,
     ('CheckpointMismatchError', 'LoadReport', 'extract_state_dict',
      'load_pretrained', 'match_state_dict', 'resolve_checkpoint_path')),
    'dynconv_mmdet.models.backbones':
    (checkpoint,
     ('convert_official_state_dict', 'convert_mmpretrain_state_dict',
      'to_backbone_state_dict', 'CheckpointMismatchError', 'LoadReport',
      'load_pretrained', 'match_state_dict')),
    'dynconv_mmdet.converters':
    (checkpoint, ('BACKBONE_ARCHS', 'CLASSIFIER_KEYS',
                  'convert_released_detector', 'released_detector_type')),
    'dynconv_mmdet.converters.released_detector':
    (released_detector,
     ('BACKBONE_ARCHS', 'CLASSIFIER_KEYS', 'convert_released_detector',
      'released_detector_type')),
}


@pytest.mark.parametrize('old', sorted(MOVED))
def test_old_names_import_with_a_deprecation_warning(old):
    module = importlib.import_module(old)
    new, names = MOVED[old]
    for name in names:
        with pytest.warns(DeprecationWarning, match=f'{old}.{name} moved'):
            value = getattr(module, name)
        assert value is getattr(new, name), name
    with pytest.raises(AttributeError, match='no attribute'):
        module.not_a_name  # noqa: B018


def test_from_import_warns():
    with pytest.warns(DeprecationWarning, match='dynconv_mmdet.checkpoint'):
        from dynconv_mmdet.utils.checkpoint import safe_torch_load
    assert safe_torch_load is checkpoint.safe_torch_load
    with pytest.warns(DeprecationWarning):
        from dynconv_mmdet.models.backbones import load_pretrained
    assert load_pretrained is checkpoint.load_pretrained
