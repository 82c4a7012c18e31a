"""The toy ImageNet generator lives beside its command line."""
import importlib
import os

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
