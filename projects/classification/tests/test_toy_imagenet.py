"""The toy ImageNet generator lives beside its command line; its old home
in ``dynconv_cls`` forwards the name with a pointer."""
import importlib
import os

import pytest

TOOL = 'projects.classification.tools.create_toy_imagenet'


def test_command_line_writes_the_dataset(tmp_path, capsys):
    tool = importlib.import_module(TOOL)
    root = tmp_path / 'toy'
    tool.main([
        str(root), '--num-classes', '3', '--train-per-class', '2',
        '--val-per-class', '1', '--image-size', '16'
    ])
    assert '6 training and 3 validation images in 3 classes' in (
        capsys.readouterr().out)
    classes = (root / 'meta' / 'classes.txt').read_text().split()
    assert classes == ['class_000', 'class_001', 'class_002']
    for split, per_class in (('train', 2), ('val', 1)):
        lines = (root / 'meta' / f'{split}.txt').read_text().splitlines()
        assert len(lines) == 3 * per_class
        for line in lines:
            path, label = line.split()
            assert (root / split / path).is_file()
            assert path.startswith(classes[int(label)] + os.sep)


@pytest.mark.parametrize('module', [
    'projects.classification.dynconv_cls',
    'projects.classification.dynconv_cls.datasets',
    'projects.classification.dynconv_cls.datasets.toy_imagenet'
])
def test_old_name_forwards_with_a_pointer(module):
    old_home = importlib.import_module(module)
    with pytest.warns(DeprecationWarning) as record:
        generate = old_home.generate_toy_imagenet
    assert generate is importlib.import_module(TOOL).generate_toy_imagenet
    message = str(record[0].message)
    assert 'projects/classification/tools/create_toy_imagenet.py' in message
    assert f'from {TOOL} import generate_toy_imagenet' in message
    with pytest.raises(AttributeError, match='no_such_name'):
        getattr(old_home, 'no_such_name')
