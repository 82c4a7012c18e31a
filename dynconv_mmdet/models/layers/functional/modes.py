"""Which computation a call may take: eager inference, or a graph traced
for export, and then in which export form (:func:`export_form`)."""
import contextlib
from typing import Iterator, Optional

import torch

#: The forms of a per-sample convolution in a graph traced for export:
#:
#: * ``'single'``: the graph's batch is fixed at one; the layer convolves
#:   once with the sample's kernel (one ``Conv``, as a static conv);
#: * ``'grouped'``: the graph's batch is fixed at ``N > 1``; the batch is
#:   folded into the groups of one ``Conv`` (ONNX's ``group`` is static,
#:   so the graph holds for that batch only);
#: * ``'free'``: the graph has a free batch axis; a form that is right for
#:   every batch (pointwise kernels: a batched matrix product, others:
#:   ``unfold`` and a batched matrix product).
EXPORT_FORMS = ('single', 'grouped', 'free')
#: The form of a graph traced without :func:`export_form`: right for every
#: batch.
DEFAULT_EXPORT_FORM = 'free'

_state = {'form': None}


def check_export_form(form: str) -> str:
    """``form`` if it is one of :data:`EXPORT_FORMS`, else a ``ValueError``."""
    if form not in EXPORT_FORMS:
        raise ValueError(f'unknown export form {form!r}; choose one of '
                         f'{EXPORT_FORMS} (single: batch fixed at 1, '
                         'grouped: batch fixed above 1, free: free batch)')
    return form


@contextlib.contextmanager
def export_form(form: Optional[str]) -> Iterator[None]:
    """Within: graphs traced for export take the per-sample convolution
    form ``form`` (:data:`EXPORT_FORMS`; ``None``: the default,
    :data:`DEFAULT_EXPORT_FORM`).

    The form is an explicit choice of the exporter, which knows whether the
    graph's batch axis is free: never derived from the batch of the example
    input seen while tracing (a graph traced with one image and exported
    with a free batch axis must stay right for every batch).
    """
    if form is not None:
        check_export_form(form)
    previous = _state['form']
    _state['form'] = form
    try:
        yield
    finally:
        _state['form'] = previous


def current_export_form() -> str:
    """The form set by :func:`export_form`, else
    :data:`DEFAULT_EXPORT_FORM`."""
    return _state['form'] or DEFAULT_EXPORT_FORM


def tracing_for_export() -> bool:
    """Whether a graph is being traced for export (ONNX with either
    exporter, ``torch.export``, ``torch.jit.trace``)."""
    return (torch.compiler.is_exporting() or torch.jit.is_tracing()
            or torch.onnx.is_in_onnx_export())


def eager_inference() -> bool:
    """Whether the current call records no autograd graph and is neither
    compiled nor traced (``torch.compile``, ``torch.export``, ONNX export,
    ``torch.jit.trace``).

    Then a layer may take its inference path: values it derived from its
    parameters before (folded norms, packed heads) and operations in place
    on the tensors it creates itself. A traced or compiled graph sees the
    plain computation on the parameters (``torch.export``'s non-strict
    tracing, under ``torch.no_grad()``, is neither compiling nor
    ``jit``-tracing: an in-place op on a view there is lost from the graph).
    """
    return not (torch.is_grad_enabled() or torch.compiler.is_compiling()
                or tracing_for_export())
