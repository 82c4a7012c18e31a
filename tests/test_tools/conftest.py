# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Shared by the end-to-end tests of the tools: what is slow to make is made
once per session.

- ``toy_coco(num_train, num_val)``: a generated toy COCO set (224 px
  images, seed 0), one per size for the whole session. The tests only read
  it; a test that breaks images generates a set of its own.
"""
from typing import Callable, Dict, Tuple

import pytest

from tools.misc.generate_toy_coco import generate_toy_coco


@pytest.fixture(scope='session')
def toy_coco(tmp_path_factory) -> Callable[[int, int], str]:
    """``toy_coco(num_train, num_val)``: the root of a toy COCO set of that
    size (no trailing ``/``), generated on first use."""
    made: Dict[Tuple[int, int], str] = {}

    def get(num_train: int, num_val: int) -> str:
        key = (num_train, num_val)
        if key not in made:
            root = str(
                tmp_path_factory.mktemp(f'toy_coco_{num_train}_{num_val}'))
            generate_toy_coco(
                root,
                num_train=num_train,
                num_val=num_val,
                image_size=224,
                seed=0)
            made[key] = root
        return made[key]

    return get
