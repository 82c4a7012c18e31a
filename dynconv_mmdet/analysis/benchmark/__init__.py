"""Speed and memory of the dynamic convolutions against static convs.

Three implementations are timed in one run, interleaved and repeated
(median of ``--train-repeats`` runs of every training step and ``--repeats``
runs of every inference pass, after one warm-up run each, every other round
in reverse order):

* ``static``: ``nn.Conv2d`` / the static backbone (the preset without a
  layout), the physical floor;
* ``released``: the same dynamic modules computing the released formulation
  (:func:`~dynconv_mmdet.analysis.reference.batch_folded_conv2d`: batch
  folded into the groups, attentions multiplied into the feature maps, the
  ``[B, K, C_out, C_in, k, k]`` kernel product), swapped in for the timed
  pass by :func:`~dynconv_mmdet.analysis.reference.released_formulation`;
  ``-`` for a family without one;
* ``ours``: the layers' own forward
  (:func:`~dynconv_mmdet.models.layers.functional.dynamic_conv2d`).

Parts (``--only``): ``layers`` (the convs of a ResNet-50 under a 1333x800
image), ``backbones`` (ResNet-50 at 800x800, MobileNetV2 1.0 and 0.5 at
800x800 and 320x320), ``compiled`` (``torch.compile`` of the static and the
dynamic backbones, inference) and ``detectors`` (the configs' own models,
each against the static config of the same detector). The variants come from
the backbones' preset tables; ``--dynamic`` adds a user's layout,
``--custom-imports`` the module that registers its conv.

Before any timing, ``ours`` is checked against ``released`` on every timed
module (and every compiled module against its eager self); any mismatch
aborts the run with status 1. See ``docs/benchmark.md``.

Modules: the command line (:mod:`.command`) and the run, a loop over the
parts (:mod:`.run`, :class:`~.part.Part`); one module per part
(:mod:`.layers`, :mod:`.backbones`, :mod:`.compiled`, :mod:`.detectors`
with the configs it pairs in :mod:`.detector_configs`); the exactness check
(:mod:`.exactness`), the variants (:mod:`.presets`), the timing
(:mod:`.timing`) and the tables (:mod:`.report`).
"""
from .backbones import BACKBONES, QUICK_BACKBONES
from .command import main, parse_args
from .exactness import (COMPILED_TOL, GRAD_TOL, OUT_TOL, ExactnessError,
                        check_compiled, check_inference, check_module,
                        check_tensors, relative_error)
from .presets import (CUSTOM, dynamic_presets, layer_kinds, parse_layout,
                      static_preset)
from .report import IMPLS
from .run import PARTS
from .timing import MODES, Step, make_step, run_interleaved

__all__ = [
    'COMPILED_TOL', 'GRAD_TOL', 'OUT_TOL', 'ExactnessError', 'check_compiled',
    'check_inference', 'check_module', 'check_tensors', 'relative_error',
    'IMPLS', 'PARTS', 'main', 'parse_args', 'BACKBONES', 'CUSTOM',
    'QUICK_BACKBONES', 'dynamic_presets', 'layer_kinds', 'parse_layout',
    'static_preset', 'MODES', 'Step', 'make_step', 'run_interleaved'
]
