# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Helpers every other subpackage may use; imports nothing of ours."""
from .formatting import MAX_LISTED, format_listing

__all__ = ['MAX_LISTED', 'format_listing']
