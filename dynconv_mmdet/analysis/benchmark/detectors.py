"""The ``detectors`` part: whole detectors from our configs
(:mod:`.detector_configs`), each against its static twin, training step and
inference pass at the configs' sizes."""
import copy
from typing import Dict, List, Tuple

import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmengine.config import ConfigDict
from torch import Tensor

from .detector_configs import DetectorConfig, select, walk
from .exactness import (CHECK_BATCH, CHECK_SIZE, check_inference, check_module,
                        checkable, has_released)
from .part import Part
from .presets import LAYER_BACKBONE, UsageError, check_presets
from .report import format_detector_table
from .timing import MODES, Step, run_interleaved, set_mode


def build_detector(model: dict, device: torch.device) -> nn.Module:
    """The detector of a config (constructor initialisation; the
    ``init_cfg`` checkpoints are not loaded)."""
    cfg = ConfigDict(copy.deepcopy(model), _scope_='mmdet')
    return MODELS.build(cfg).to(device)


def num_classes(model: dict) -> int:
    """The number of classes of a detector config (80 if not given)."""
    for node in walk(model):
        if isinstance(node, dict) and isinstance(node.get('num_classes'), int):
            return node['num_classes']
    return 80


def detector_inputs(batch: int,
                    size: int,
                    classes: int,
                    device: torch.device,
                    seed: int = 0) -> Tuple[Tensor, List]:
    """Random normalised images ``[batch, 3, size, size]`` and data samples
    with 5 random ground-truth boxes each (the data preprocessor is not
    run: it is not what is timed)."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, 3, size, size, generator=gen)
    samples = []
    for i in range(batch):
        sample = DetDataSample()
        sample.set_metainfo(
            dict(
                img_id=i,
                img_shape=(size, size),
                ori_shape=(size, size),
                pad_shape=(size, size),
                batch_input_shape=(size, size),
                scale_factor=(1.0, 1.0),
                flip=False,
                flip_direction=None,
                border=[0, 0, 0, 0]))
        xy = torch.rand(5, 2, generator=gen) * size * 0.7
        wh = (torch.rand(5, 2, generator=gen) * 0.25 + 0.05) * size
        gt = InstanceData()
        gt.bboxes = torch.cat([xy, (xy + wh).clamp(max=size)], dim=1)
        gt.labels = torch.randint(classes, (5, ), generator=gen)
        sample.gt_instances = gt
        samples.append(sample.to(device))
    return images.to(device), samples


def detector_step(model: nn.Module,
                  images: Tensor,
                  samples: List,
                  mode: str,
                  released: bool = False) -> Step:
    """One training step (loss of the batch, backward; gradients set to
    ``None`` before) or one inference pass (``predict``, eval mode, no
    gradients) of a detector; ``released``: its dynamic convs computing the
    released formulation."""

    def prepare() -> None:
        model.zero_grad(set_to_none=True)

    if mode == 'train':

        def train() -> None:
            set_mode(model, True)
            prepare()
            loss, _ = model.parse_losses(model.loss(images, samples))
            loss.backward()

        return Step(train, model, released, prepare)

    def infer() -> None:
        set_mode(model, False)
        with torch.no_grad():
            model.predict(images, samples)

    return Step(infer, model, released)


class FeatureExtractor(nn.Module):
    """A detector's ``extract_feat`` (backbone and neck, where the dynamic
    convs are) as a module, for the exactness check."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, x: Tensor):
        return self.detector.extract_feat(x)


class DetectorsPart(Part):
    """Detectors: per baseline, the baseline and every config of its group,
    the config also with the released formulation of its dynamic convs
    where it has one, round-robin.

    Attributes:
        groups (dict): ``baseline name -> (baseline, [configs])``
            (:func:`~.detector_configs.select`).
        models (dict): ``config name -> detector``.
    """
    name = 'detectors'

    def build(self) -> None:
        args, run = self.run.args, self.run
        self.groups: Dict[str, Tuple[DetectorConfig,
                                     List[DetectorConfig]]] = {}
        self.models: Dict[str, nn.Module] = {}
        self.groups, notes = select(args.config_dir, args.detectors,
                                    args.presets, args.detector_size,
                                    args.quick)
        run.notes += notes
        check_presets(args.presets, [LAYER_BACKBONE] + [
            c.model['backbone'] for base, cfgs in self.groups.values()
            for c in [base] + cfgs if 'preset' in c.model.get('backbone', {})
        ])
        if not self.groups:
            raise UsageError(
                f'--detectors: no config of {args.config_dir} to time '
                f'(patterns {args.detectors}); give config names such as '
                'odconv_faster_rcnn_r50_fpn_1x')
        for base, cfgs in self.groups.values():
            for cfg in [base] + cfgs:
                torch.manual_seed(0)
                self.models[cfg.name] = build_detector(cfg.model, run.device)
            run.log(f'built {base.name} and {", ".join(c.name for c in cfgs)}')

    def check(self) -> List[Dict]:
        """Backbone and neck (``extract_feat``) of every config, as the
        backbones (:meth:`~.backbones.BackbonesPart.check`): training in
        float64, inference at every size of the group in float32."""
        checks = []
        device = self.run.device
        for base, configs in self.groups.values():
            for cfg in configs:
                module = FeatureExtractor(self.models[cfg.name])
                if not checkable(cfg.name, module, self.run.no_reference):
                    continue
                x = torch.randn(
                    CHECK_BATCH, 3, CHECK_SIZE, CHECK_SIZE, device=device)
                checks.append(check_module(cfg.name, module, x, torch.float64))
                for size in base.sizes:
                    x = torch.randn(
                        MODES['infer'], 3, size, size, device=device)
                    checks.append(check_inference(cfg.name, module, x))
        return checks

    def time(self) -> List[Dict]:
        """Every group at each of its sizes (the training step at the
        first): the baseline, then every config, round-robin."""
        rows = []
        repeats, device = self.run.repeats, self.run.device
        for base, configs in self.groups.values():
            classes = num_classes(base.model)
            for i, size in enumerate(base.sizes):
                for mode, batch in MODES.items():
                    if mode == 'train' and i > 0:
                        continue
                    images, samples = detector_inputs(batch, size, classes,
                                                      device)
                    steps = {
                        name:
                        detector_step(self.models[name], images, samples, mode)
                        for name in [base.name] + [c.name for c in configs]
                    }
                    for cfg in configs:
                        model = self.models[cfg.name]
                        if has_released(model):
                            steps[(cfg.name, 'released')] = detector_step(
                                model, images, samples, mode, released=True)
                    res, peaks = run_interleaved(steps, repeats[mode], device,
                                                 self.run.memory)
                    for cfg in configs:
                        rows.append(
                            self._row(base.name, cfg.name, size, mode, batch,
                                      res, peaks))
        return rows

    def _row(self, base: str, name: str, size: int, mode: str, batch: int,
             res: Dict, peaks: Dict) -> Dict:
        row = dict(
            config=name,
            baseline=base,
            size=size,
            mode=mode,
            batch=batch,
            repeats=self.run.repeats[mode],
            times=dict(baseline=res[base], config=res[name]))
        released = (name, 'released')
        if released in res:
            row['times']['released'] = res[released]
        if peaks:
            row['peak_mib'] = dict(baseline=peaks[base], config=peaks[name])
            if released in peaks:
                row['peak_mib']['released'] = peaks[released]
        self.run.log(f'{name} {size} {mode}: ' +
                     ', '.join(f'{impl} {t["median_ms"]:.0f} ms'
                               for impl, t in row['times'].items()))
        return row

    def report(self, rows: List[Dict]) -> List[str]:
        return ['## Detectors, ms', format_detector_table(rows)]
