# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""tools/env/run_with_progress.sh, which reports the mmcv compile of
tools/env/setup_env.sh (15-35 minutes): a line every
DYNCONV_PROGRESS_INTERVAL seconds with the elapsed time and the last ninja
step, the output in a log, the command's exit status."""
import os
import os.path as osp
import re
import subprocess

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'tools', 'env', 'run_with_progress.sh')
SETUP = osp.join(REPO, 'tools', 'env', 'setup_env.sh')

# A fake build: 40 ninja-style steps at once, then a pause (the long link).
_NINJA_BUILD = ('for i in $(seq 1 40); do '
                'echo "[$i/40] c++ -MMD -c /src/mmcv/ops/csrc/op_$i.cpp -o '
                'op_$i.o"; done; sleep 2.5')


def _run(tmp_path, command: str, interval: str = '1'):
    log = str(tmp_path / 'logs' / 'build.log')
    proc = subprocess.run(
        ['bash', SCRIPT, 'compiling fake', log, 'bash', '-c', command],
        env=dict(os.environ, DYNCONV_PROGRESS_INTERVAL=interval),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60)
    return proc, log


def test_progress_lines_with_ninja_steps(tmp_path):
    proc, log = _run(tmp_path, _NINJA_BUILD)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ''  # everything goes to stderr and the log
    lines = proc.stderr.splitlines()
    assert lines[0] == (f'[setup_env] compiling fake: started, log in {log} '
                        '(a progress line every 1s)')
    progress = lines[1:-1]
    assert progress, lines
    for line in progress:  # one per interval, not one per compiled file
        assert re.fullmatch(
            r'\[setup_env\] compiling fake: \d+m\d\ds elapsed, step '
            r'\[40/40\] op_40\.cpp', line), line
    assert re.fullmatch(r'\[setup_env\] compiling fake: done in \d+m\d\ds',
                        lines[-1])
    with open(log) as f:
        assert f.read().count('c++ -MMD') == 40


def test_compiler_lines_without_ninja(tmp_path):
    proc, _ = _run(
        tmp_path, 'echo "gcc -c a.cpp -o a.o"; echo "gcc -c b.cu -o b.o"; '
        'echo "gcc -o mmcv.so a.o b.o"; sleep 2.5')
    assert proc.returncode == 0
    assert re.search(r'elapsed, 2 source files compiled', proc.stderr)


def test_failure_shows_the_end_of_the_log_and_keeps_the_status(tmp_path):
    proc, log = _run(
        tmp_path, 'echo "[1/2] c++ x.cpp"; echo "fatal error: x.h"; exit 3')
    assert proc.returncode == 3
    assert re.search(
        r'compiling fake failed after \d+m\d\ds \(exit status 3\); last '
        r'lines '
        f'of {re.escape(log)}:\n\\[1/2\\] c\\+\\+ x.cpp\nfatal error: x.h',
        proc.stderr)


def test_bad_interval_and_usage(tmp_path):
    proc, _ = _run(tmp_path, 'true', interval='often')
    assert proc.returncode == 2
    assert 'DYNCONV_PROGRESS_INTERVAL must be a positive number' in \
        proc.stderr
    proc = subprocess.run(['bash', SCRIPT, 'label'],
                          stderr=subprocess.PIPE,
                          text=True)
    assert proc.returncode == 2 and 'usage:' in proc.stderr


def test_setup_env_compiles_mmcv_through_it():
    with open(SETUP) as f:
        text = f.read()
    assert subprocess.run(['bash', '-n', SETUP]).returncode == 0
    compile_cmd = text[text.index('run_with_progress.sh'):]
    compile_cmd = compile_cmd[:compile_cmd.index('|| die')]
    assert 'pip wheel' in compile_cmd and ' -v ' in compile_cmd
    assert ' -q ' not in compile_cmd  # the log needs the compiler's output
