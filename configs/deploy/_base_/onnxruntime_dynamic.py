# ONNX Runtime, free batch, height and width (mmdeploy's `base_dynamic.py`).
_base_ = ['./onnxruntime_static.py']
onnx_config = dict(
    dynamic_axes={
        'input': {
            0: 'batch',
            2: 'height',
            3: 'width'
        },
        'dets': {
            0: 'batch',
            1: 'num_dets'
        },
        'labels': {
            0: 'batch',
            1: 'num_dets'
        },
    })
