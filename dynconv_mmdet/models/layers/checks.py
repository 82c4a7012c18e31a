"""Argument checks shared by the dynamic conv families."""
from typing import Tuple, Union

IntOrPair = Union[int, Tuple[int, int]]


def check_positive_int(layer: str, name: str, value) -> None:
    """Raise ``ValueError`` unless ``value`` is an ``int`` >= 1 (not a
    ``bool``); the message names the layer and the argument."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'{layer}: {name} must be a positive integer, '
                         f'got {value!r}')


def check_pair(layer: str, name: str, value: Tuple[int, int],
               minimum: int) -> None:
    """Raise ``ValueError`` unless both entries of ``value`` are ``int``
    >= ``minimum``."""
    if any(
            isinstance(v, bool) or not isinstance(v, int) or v < minimum
            for v in value):
        raise ValueError(f'{layer}: {name} must be integers >= {minimum}, '
                         f'got {value!r}')


def check_conv_channels(layer: str, in_channels: int, out_channels: int,
                        groups: int) -> None:
    """Positive ``in_channels``, ``out_channels`` and ``groups``, both
    channel counts divisible by ``groups``."""
    check_positive_int(layer, 'in_channels', in_channels)
    check_positive_int(layer, 'out_channels', out_channels)
    check_positive_int(layer, 'groups', groups)
    if in_channels % groups or out_channels % groups:
        raise ValueError(
            f'{layer}: in_channels ({in_channels}) and out_channels '
            f'({out_channels}) must both be divisible by groups '
            f'({groups})')
