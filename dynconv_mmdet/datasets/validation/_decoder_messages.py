# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""What image decoders only warn about, collected per file.

libjpeg (inside OpenCV, the decoder mmcv trains with) decodes a JPEG whose
body is corrupt into an image with wrong pixels and only writes ``Corrupt
JPEG data: ...`` to the process's standard error (file descriptor 2), which
names no file; PIL reports some problems as Python warnings.
:class:`DecoderMessages` redirects descriptor 2 to a temporary file and
records warnings while it is active, so that the full image check can turn
these messages into failures that name the file.

Descriptor 2 and the warning filters belong to the whole process: text that
threads write while the capture is active lands in the same capture, so a
message is attributed to a file only when the files are decoded one after
the other (see ``inspect_images``). What is not turned into a failure is
written back to standard error (and warnings shown) when the capture ends.
"""
import os
import re
import sys
import tempfile
import warnings
from types import TracebackType
from typing import IO, List, Optional, Type

#: Lines that are not failures: libpng's notes on a PNG's colour profile
#: (``iCCP``, e.g. "known incorrect sRGB profile"), common in valid images;
#: the pixels decode intact and OpenCV does not use the profile.
BENIGN_PREFIXES = ('libpng warning: iCCP:', )
#: Python warnings that are not failures either: Pillow's notes on EXIF and
#: other metadata ("Possibly corrupt EXIF data", "Metadata Warning, ..."),
#: common in camera photos whose pixels are intact.
_METADATA_WARNING = re.compile(r'exif|metadata', re.IGNORECASE)


def _flush_stderr() -> None:
    try:
        if sys.stderr is not None:
            sys.stderr.flush()
    except (OSError, ValueError):
        pass


class DecoderMessages:
    """Context manager collecting decoder messages (see the module doc).

    Use :meth:`take` after decoding a file to get the messages written or
    warned since the previous call.
    """

    def __init__(self) -> None:
        self._file: Optional[IO[bytes]] = None
        self._saved_fd: Optional[int] = None
        self._catcher: Optional[warnings.catch_warnings] = None
        self._records: List[warnings.WarningMessage] = []
        self._offset = 0
        self._seen = 0
        self._pass_on_text: List[str] = []
        self._pass_on_warnings: List[warnings.WarningMessage] = []

    def __enter__(self) -> 'DecoderMessages':
        _flush_stderr()
        # Append mode: descriptor 2 shares the file offset with this file,
        # so every write appends whatever offset reading has left.
        self._file = tempfile.TemporaryFile('a+b')
        try:
            saved = os.dup(2)
        except OSError:  # no standard error: nothing to capture there
            saved = None
        if saved is not None:
            try:
                os.dup2(self._file.fileno(), 2)
                self._saved_fd = saved
            except OSError:
                os.close(saved)
        self._catcher = warnings.catch_warnings(record=True)
        self._records = self._catcher.__enter__()
        warnings.simplefilter('always', UserWarning)
        return self

    def take(self) -> List[str]:
        """Messages since the previous call (one per line or warning), less
        the benign ones (:data:`BENIGN_PREFIXES`, metadata warnings), which
        are passed on at the end."""
        _flush_stderr()
        messages = []
        assert self._file is not None, 'use DecoderMessages in a with block'
        self._file.seek(self._offset)
        data = self._file.read()
        self._offset += len(data)
        for line in data.decode('utf-8', 'replace').splitlines():
            line = line.strip()
            if line.startswith(BENIGN_PREFIXES):
                self._pass_on_text.append(line)
            elif line:
                messages.append(line)
        records = self._records[self._seen:]
        self._seen += len(records)
        for record in records:
            failure = (
                issubclass(record.category, UserWarning)
                and not _METADATA_WARNING.search(str(record.message)))
            if failure:
                messages.append(
                    f'{record.category.__name__}: {record.message}')
            else:
                self._pass_on_warnings.append(record)
        return messages

    def forget(self) -> None:
        """Drop what is to be passed on (the files will be decoded again)."""
        self._pass_on_text.clear()
        self._pass_on_warnings.clear()

    def pass_on(self, messages: List[str]) -> None:
        """Write ``messages`` to standard error when the capture ends."""
        self._pass_on_text.extend(messages)

    def __exit__(self, exc_type: Optional[Type[BaseException]],
                 exc: Optional[BaseException],
                 traceback: Optional[TracebackType]) -> None:
        _flush_stderr()
        if self._saved_fd is not None:
            os.dup2(self._saved_fd, 2)
            os.close(self._saved_fd)
            self._saved_fd = None
        if self._catcher is not None:
            self._catcher.__exit__(exc_type, exc, traceback)
            self._catcher = None
        if self._file is not None:
            self._file.seek(self._offset)  # written after the last take()
            rest = self._file.read().decode('utf-8', 'replace').strip()
            if rest:
                self._pass_on_text.append(rest)
            self._file.close()
            self._file = None
        if self._pass_on_text:
            text = '\n'.join(self._pass_on_text) + '\n'
            try:
                os.write(2, text.encode('utf-8', 'replace'))
            except OSError:
                pass
        for record in self._pass_on_warnings:
            warnings.warn_explicit(record.message, record.category,
                                   record.filename, record.lineno)
        self.forget()
