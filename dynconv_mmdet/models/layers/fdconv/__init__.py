"""FDConv: frequency dynamic convolution, one module per part.

Chen et al., "Frequency Dynamic Convolution for Dense Image Prediction",
CVPR 2025 (github Linwei-Chen/FDConv, MIT): the layer :class:`FDConv2d`
(:mod:`.layer`), the Fourier disjoint weight (:mod:`.frequency`), the kernel
spatial modulation's global and local branches (:mod:`.ksm_global`,
:mod:`.ksm_local`), the frequency band modulation (:mod:`.fbm`), the
release's rules (:mod:`.rules`), the cost (:mod:`.cost`) and the export's
real DFT products (:mod:`.export`).
"""
from .fbm import FrequencyBandModulation
from .frequency import dense_to_spectrum, frequency_groups
from .ksm_global import KernelSpatialModulationGlobal, StarReLU
from .ksm_local import KernelSpatialModulationLocal
from .layer import FDConv2d
from .rules import RELEASE_FBM_CFG, release_rule_reason

__all__ = [
    'FDConv2d', 'FrequencyBandModulation', 'KernelSpatialModulationGlobal',
    'KernelSpatialModulationLocal', 'StarReLU', 'RELEASE_FBM_CFG',
    'dense_to_spectrum', 'frequency_groups', 'release_rule_reason'
]
