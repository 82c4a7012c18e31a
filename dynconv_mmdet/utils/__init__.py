from ..checkpoint.moved import moved_names
from .formatting import MAX_LISTED, format_listing
from .preflight import (PreflightError, check_config, check_conv_types,
                        check_dataset, check_pretrained)

# Checkpoint reading moved to dynconv_mmdet.checkpoint.
__getattr__ = moved_names(__name__,
                          ('CheckpointError', 'mmengine_checkpoint_globals',
                           'register_safe_globals', 'safe_torch_load'))

__all__ = [
    'MAX_LISTED', 'format_listing', 'PreflightError', 'check_config',
    'check_conv_types', 'check_dataset', 'check_pretrained'
]
