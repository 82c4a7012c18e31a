# ONNX Runtime, static shapes: mmdeploy 1.3.1's `configs/_base_/onnx_config.py`
# + `configs/mmdet/_base_/base_static.py` + `backends/onnxruntime.py` in one
# file (mmdeploy's wheel does not ship its configs). Opset 11 is mmdeploy's
# default; the `*_opset13` configs change only that.
onnx_config = dict(
    type='onnx',
    export_params=True,
    keep_initializers_as_inputs=False,
    opset_version=11,
    save_file='end2end.onnx',
    input_names=['input'],
    output_names=['dets', 'labels'],
    input_shape=None,
    optimize=True)
codebase_config = dict(
    type='mmdet',
    task='ObjectDetection',
    model_type='end2end',
    post_processing=dict(
        score_threshold=0.05,
        confidence_threshold=0.005,
        iou_threshold=0.5,
        max_output_boxes_per_class=200,
        pre_top_k=5000,
        keep_top_k=100,
        background_label_id=-1))
backend_config = dict(type='onnxruntime')
