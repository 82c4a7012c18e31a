"""A neck whose ``in_channels`` do not fit the backbone's ``out_indices`` is
found from the config, before anything is built (mmdet's FPN fails only in
the first forward pass)."""
import copy

import pytest

from dynconv_mmdet.models.checks import (backbone_output_channels,
                                         check_neck_matches_backbone,
                                         neck_backbone_problems)

FASTER_RCNN = dict(
    type='FasterRCNN',
    backbone=dict(
        type='DynamicResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        preset='odconv1x'),
    neck=dict(
        type='FPN', in_channels=[256, 512, 1024, 2048], out_channels=256))


def model(**changes):
    cfg = copy.deepcopy(FASTER_RCNN)
    for key, value in changes.items():
        part, _, name = key.partition('__')
        cfg[part][name] = value
    return cfg


def test_matching_configs_pass():
    check_neck_matches_backbone(model())
    check_neck_matches_backbone(
        model(backbone__out_indices=(3, 1), neck__in_channels=[512, 2048]))
    check_neck_matches_backbone(
        dict(
            backbone=dict(type='mmdet.DynamicMobileNetV2', widen_factor=0.5),
            neck=dict(type='FPN', in_channels=[16, 16, 48, 1280])))
    rtmdet = dict(
        backbone=dict(
            type='DynamicCSPNeXt', deepen_factor=0.167, widen_factor=0.375),
        neck=dict(type='CSPNeXtPAFPN', in_channels=[96, 192, 384]))
    check_neck_matches_backbone(rtmdet)
    # not ours: not checked
    check_neck_matches_backbone(
        model(backbone__type='ResNet', neck__in_channels=[1, 2]))
    assert neck_backbone_problems(None) == []


def test_out_indices_that_do_not_fit_the_neck():
    cfg = model(backbone__out_indices=(1, 2, 3))
    with pytest.raises(ValueError) as err:
        check_neck_matches_backbone(cfg)
    message = str(err.value)
    assert 'model.neck.in_channels is [256, 512, 1024, 2048]' in message
    assert 'out_indices (1, 2, 3)' in message
    assert 'set model.neck.in_channels=[512, 1024, 2048]' in message
    # a list of necks: the first takes the backbone's outputs
    cfg['neck'] = [cfg['neck'], dict(type='Identity')]
    assert 'model.neck[0].in_channels' in neck_backbone_problems(cfg)[0]
    # the default out_indices of a backbone count too
    cfg = dict(
        backbone=dict(type='DynamicMobileNetV2', widen_factor=1.0),
        neck=dict(type='FPN', in_channels=[24, 32, 64, 1280]))
    with pytest.raises(ValueError, match=r'\[24, 32, 96, 1280\]'):
        check_neck_matches_backbone(cfg)


def test_out_of_range_arguments_are_reported_before_building():
    with pytest.raises(
            ValueError,
            match=r'model.backbone: DynamicResNet: '
            r'out_indices .* 0..3 .*got \(1, 2, 3, 4\)'):
        check_neck_matches_backbone(model(backbone__out_indices=(1, 2, 3, 4)))
    with pytest.raises(ValueError, match='frozen_stages .*-1..4'):
        check_neck_matches_backbone(model(backbone__frozen_stages=5))


def test_classifier_head_behind_a_pooling_neck():
    cls = dict(
        type='ImageClassifier',
        backbone=dict(type='mmdet.DynamicResNet', depth=50, out_indices=(3, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', in_channels=2048))
    check_neck_matches_backbone(cls)
    cls['backbone']['depth'] = 18
    with pytest.raises(
            ValueError,
            match=r'model.head.in_channels is 2048.*'
            r'512 channels; set model.head.in_channels=512'):
        check_neck_matches_backbone(cls)


def test_backbone_output_channels():
    assert backbone_output_channels(FASTER_RCNN['backbone']) == (256, 512,
                                                                 1024, 2048)
    assert backbone_output_channels(
        dict(type='DynamicCSPDarknet', widen_factor=0.5)) == (128, 256, 512)
    assert backbone_output_channels(dict(type='ResNet', depth=50)) is None
