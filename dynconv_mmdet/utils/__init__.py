from .checkpoint import (CheckpointError, mmengine_checkpoint_globals,
                         register_safe_globals, safe_torch_load)
from .preflight import (PreflightError, check_config, check_conv_types,
                        check_dataset, check_pretrained)

__all__ = [
    'CheckpointError', 'mmengine_checkpoint_globals', 'register_safe_globals',
    'safe_torch_load', 'PreflightError', 'check_config', 'check_conv_types',
    'check_dataset', 'check_pretrained'
]
