"""Dataset helpers."""
from .toy_imagenet import generate_toy_imagenet

__all__ = ['generate_toy_imagenet']
