"""Which computation a call may take: eager inference, or a graph traced
for export (whose batch axis must stay free)."""
import torch


def tracing_for_export() -> bool:
    """Whether a graph is being traced for export (batch must stay free)."""
    return (torch.compiler.is_exporting() or torch.jit.is_tracing()
            or torch.onnx.is_in_onnx_export())


def eager_inference() -> bool:
    """Whether the current call records no autograd graph and is neither
    compiled nor traced (``torch.compile``, ``torch.export``, ONNX export,
    ``torch.jit.trace``).

    Then a layer may take its inference path: values it derived from its
    parameters before (folded norms, packed heads) and operations in place
    on the tensors it creates itself. A traced or compiled graph sees the
    plain computation on the parameters.
    """
    return not (torch.is_grad_enabled() or torch.compiler.is_compiling()
                or torch.jit.is_tracing())
