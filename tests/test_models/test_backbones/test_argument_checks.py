"""Backbone arguments mmdet refuses late or cryptically are refused at
construction, naming the argument, the value and the valid range."""
import pytest
import torch

from dynconv_mmdet.models import (DynamicCSPDarknet, DynamicCSPNeXt,
                                  DynamicMobileNetV2, DynamicResNet)
from dynconv_mmdet.models.layers import (DyConv2d, KWConv2d, ODConv2d,
                                         get_temperatures, set_temperature)

TINY_CSP = dict(deepen_factor=0.1, widen_factor=0.0625)

# (class, arguments, largest out index, largest frozen_stages); out of
# range, mmdet raises AttributeError ('layer5'), a bare assert, or returns
# fewer outputs than asked.
RANGES = [
    (DynamicResNet, dict(depth=18), 3, 4),
    (DynamicResNet,
     dict(
         depth=50,
         num_stages=3,
         strides=(1, 2, 2),
         dilations=(1, 1, 1),
         out_indices=(0, 1, 2)), 2, 3),
    (DynamicMobileNetV2, dict(widen_factor=0.5), 7, 7),
    (DynamicCSPNeXt, dict(TINY_CSP), 4, 4),
    (DynamicCSPDarknet, dict(TINY_CSP, arch='P6'), 5, 5),
]


def _ids(case):
    cls, kwargs = case[:2]
    return f'{cls.__name__}-{"-".join(map(str, kwargs.values()))}'


@pytest.mark.parametrize(
    'cls,kwargs,last,max_frozen', RANGES, ids=[_ids(c) for c in RANGES])
def test_frozen_stages_out_of_range(cls, kwargs, last, max_frozen):
    for bad in (max_frozen + 1, -2):
        with pytest.raises(ValueError) as err:
            cls(**kwargs, frozen_stages=bad)
        message = str(err.value)
        assert cls.__name__ in message and 'frozen_stages' in message
        assert f'-1..{max_frozen}' in message and f'got {bad}' in message
    with pytest.raises(TypeError, match=r'frozen_stages .*got \'1\''):
        cls(**kwargs, frozen_stages='1')


@pytest.mark.parametrize(
    'cls,kwargs,last,max_frozen', RANGES, ids=[_ids(c) for c in RANGES])
def test_out_indices_out_of_range(cls, kwargs, last, max_frozen):
    kwargs = {k: v for k, v in kwargs.items() if k != 'out_indices'}
    for bad in ((0, last + 1), (-1, ), ()):
        with pytest.raises(ValueError) as err:
            cls(**kwargs, out_indices=bad)
        message = str(err.value)
        assert 'out_indices' in message and f'0..{last}' in message
        assert f'got {bad!r}' in message
    for bad in (last, (0.5, ), ('1', ), (True, )):
        with pytest.raises(TypeError, match=f'out_indices .*0..{last}'):
            cls(**kwargs, out_indices=bad)


def test_messages_name_the_outputs_and_the_table():
    with pytest.raises(ValueError) as err:
        DynamicResNet(50, out_indices=(1, 4))
    assert ('0..3 (0: layer1 (256 channels), 1: layer2 (512 channels), '
            '2: layer3 (1024 channels), 3: layer4 (2048 channels))'
            in str(err.value))
    with pytest.raises(ValueError, match='depth must be one of 18, 34, 50'):
        DynamicResNet(51)
    with pytest.raises(ValueError, match="arch must be one of 'P5', 'P6'"):
        DynamicCSPNeXt('P7')
    with pytest.raises(ValueError, match='num_stages must be .* in 1..4'):
        DynamicResNet(18, num_stages=5)
    with pytest.raises(TypeError, match="unexpected keyword .*'out_indice'"):
        DynamicResNet(18, out_indice=(3, ))


def test_edges_of_the_ranges_build():
    model = DynamicResNet(
        18, base_channels=4, out_indices=[3, 0], frozen_stages=4)
    assert not any(p.requires_grad for p in model.layer4.parameters())
    mb = DynamicMobileNetV2(0.25, out_indices=(7, ), frozen_stages=7)
    assert not any(p.requires_grad for p in mb.layer7.parameters())
    csp = DynamicCSPNeXt(**TINY_CSP, out_indices=(0, 4), frozen_stages=-1)
    csp.eval()  # mmdet's train() returns None
    with torch.no_grad():
        assert len(csp(torch.zeros(1, 3, 32, 32))) == 2


@pytest.mark.parametrize('cls,args,kwargs', [
    (DynamicResNet, (18, ), dict(base_channels=4, out_indices=(3, 1))),
    (DynamicResNet, (50, ), dict(base_channels=2, out_indices=(0, 2))),
    (DynamicMobileNetV2, (0.25, ), dict(out_indices=(0, 3, 6, 7))),
    (DynamicMobileNetV2, (1.5, (7, )), dict()),
    (DynamicCSPNeXt, (), dict(TINY_CSP, out_indices=(0, 1, 2, 3, 4))),
    (DynamicCSPDarknet, ('P6', ), dict(TINY_CSP, out_indices=(1, 5))),
])
def test_output_channels_match_the_built_backbone(cls, args, kwargs):
    expected = cls.output_channels(*args, **kwargs)
    model = cls(*args, **kwargs)
    model.eval()
    with torch.no_grad():
        outs = model(torch.zeros(1, 3, 64, 64))
    assert tuple(o.shape[1] for o in outs) == expected


@pytest.mark.parametrize('bad', ['30', [1.0], True, {'T': 1}])
def test_non_numeric_temperature_in_the_layers(bad):
    for cls, kwargs, valid in ((DyConv2d, {}, r'\(0, inf\]'), (ODConv2d, {},
                                                               r'\(0, inf\]'),
                               (KWConv2d, dict(cell_num_ratio=1),
                                r'\[0, 1\]')):
        with pytest.raises(
                TypeError,
                match=f'{cls.__name__}: temperature must be a '
                f'number in {valid}'):
            cls(8, 8, 3, padding=1, temperature=bad, **kwargs)
    layer = DyConv2d(8, 8, 3, padding=1, temperature=2.0)
    with pytest.raises(TypeError, match=r'temperature .*\(0, inf\]'):
        layer.temperature = bad
    assert layer.temperature == 2.0
    layer.temperature = torch.tensor(3.0)  # numbers keep working
    assert layer.temperature == 3.0 and type(layer.temperature) is float


def test_non_numeric_temperature_in_backbones_and_set_temperature():
    with pytest.raises(
            TypeError,
            match=r"DynamicResNet: temperature must be "
            r"a number \(valid ranges: .*ODConv2d \(0, inf\].*\) "
            r"or None .*got '30'"):
        DynamicResNet(18, preset='odconv1x', temperature='30')
    # a static backbone has no layer with a temperature: still refused
    with pytest.raises(TypeError, match='temperature'):
        DynamicMobileNetV2(0.25, temperature=[30.0])
    static = DynamicResNet(18, base_channels=4)
    with pytest.raises(
            TypeError, match='no layer of this model has a '
            'temperature'):
        set_temperature(static, '30')
    model = DynamicResNet(
        18,
        base_channels=4,
        dynamic=dict(
            conv_cfg=dict(type='DyConv2d', kernel_num=2),
            stages=(True, False, False, False)))
    with pytest.raises(TypeError, match=r'DyConv2d \(0, inf\]'):
        set_temperature(model, '30')
    # a refused value changes nothing
    with pytest.raises(ValueError, match='temperature must be in'):
        set_temperature(model, -1.0)
    assert set(get_temperatures(model).values()) == {1.0}
    assert set_temperature(model, 5) == len(get_temperatures(model))
    assert set(get_temperatures(model).values()) == {5.0}
