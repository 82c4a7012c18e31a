# Instance segmentation (Mask R-CNN) for ONNX Runtime, static shapes, opset
# 11 (mmdeploy's `base_instance-seg_static.py`).
_base_ = ['./_base_/onnxruntime_static.py']
onnx_config = dict(output_names=['dets', 'labels', 'masks'])
codebase_config = dict(
    task='InstanceSegmentation',
    post_processing=dict(export_postprocess_mask=False))
