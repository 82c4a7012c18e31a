"""dynconv_mmdet.analysis.benchmark.detector_configs: every dynamic config
paired with its static twin."""
import os.path as osp

from dynconv_mmdet.analysis.benchmark import detector_configs

ROOT = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
CONFIG_DIR = osp.join(ROOT, 'configs')


def test_detector_pairs_from_the_configs(tmp_path):
    groups, notes = detector_configs.select(
        CONFIG_DIR,
        ['odconv_faster_rcnn_r50_fpn_1x', 'dcn_faster_rcnn_r50_fpn_1x.py'])
    assert not notes
    (base, configs), = groups.values()
    assert base.name == 'faster_rcnn_r50_fpn_1x' and base.sizes == (800, )
    assert [c.name for c in configs] == [
        'dcn_faster_rcnn_r50_fpn_1x', 'odconv_faster_rcnn_r50_fpn_1x'
    ]
    # without a metafile: every config of the folder; Mask R-CNN only when
    # named; a dynamic config without a static twin is noted
    for name in ('faster_rcnn_mbv2_fpn_1x', 'odconv_faster_rcnn_mbv2_fpn_1x',
                 'odconv_mask_rcnn_mbv2_fpn_1x'):
        (tmp_path / f'{name}.py'
         ).write_text(f"_base_ = {osp.join(CONFIG_DIR, name + '.py')!r}\n")
    groups, notes = detector_configs.select(str(tmp_path))
    assert [(b.name, [c.name for c in cs]) for b, cs in groups.values()] == [
        ('faster_rcnn_mbv2_fpn_1x', ['odconv_faster_rcnn_mbv2_fpn_1x'])
    ]
    assert not notes
    groups, notes = detector_configs.select(str(tmp_path), ['*mask*'])
    assert not groups and notes == [
        'odconv_mask_rcnn_mbv2_fpn_1x: no static config of the same '
        'detector; not timed'
    ]
