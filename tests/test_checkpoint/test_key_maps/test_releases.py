# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""The releases' names come from the key maps' table."""
import pytest
import torch

from dynconv_mmdet.checkpoint import (RELEASED_DETECTORS, RELEASES,
                                      released_detector_release)
from dynconv_mmdet.checkpoint.key_maps import (
    KW_RELEASE, ODCONV_RELEASE, RELEASE_KEY_MAPS,
    convert_kernel_warehouse_state_dict, convert_official_state_dict,
    recognise_release)


def test_released_detectors_name_the_key_maps_releases():
    assert set(RELEASES) == set(RELEASE_KEY_MAPS)
    for (release, _), layout in RELEASED_DETECTORS.items():
        assert layout.release == release
        key_map = RELEASE_KEY_MAPS[release].key_map
        assert layout.to_backbone is key_map.to_backbone
    assert ODCONV_RELEASE.key_map.to_backbone is convert_official_state_dict
    assert KW_RELEASE.key_map.to_backbone is \
        convert_kernel_warehouse_state_dict


def test_release_is_the_first_key_map_that_recognises_the_backbone():
    archs = {'odconv': ['resnet'], 'kw': ['resnet']}
    warehouse = {'warehouse_manager.weights.0': torch.zeros(1)}
    assert recognise_release(warehouse, archs) == 'kw'
    assert recognise_release({'conv1.weight': torch.zeros(1)},
                             archs) == 'odconv'
    with pytest.raises(KeyError, match='no release recognises'):
        recognise_release(warehouse, {})
    assert released_detector_release(
        {'module.backbone.warehouse_manager.weights.0':
         torch.zeros(1)}) == 'kw'
    assert released_detector_release({}) == 'odconv'
