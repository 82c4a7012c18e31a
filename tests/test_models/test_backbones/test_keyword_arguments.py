"""Positional arguments belong to mmdet's backbones; ours are keyword-only."""
import pytest

from dynconv_mmdet.models import DynamicMobileNetV2, DynamicResNet


def test_positional_arguments_reach_mmdet_resnet():
    # mmdet's ResNet(depth, in_channels, ...)
    assert DynamicResNet(18, 3).conv1.in_channels == 3
    assert DynamicResNet(18, 4).conv1.in_channels == 4


@pytest.mark.parametrize('build', [
    lambda: DynamicResNet(18, 'odconv1x'),
    lambda: DynamicResNet(50, 3, 'odconv4x'),
    lambda: DynamicMobileNetV2(1.0, 'odconv4x'),
])
def test_our_arguments_are_keyword_only(build):
    with pytest.raises(TypeError, match='keyword-only') as err:
        build()
    assert 'preset' in str(err.value)
