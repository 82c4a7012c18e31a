_base_ = ['./detection_onnxruntime_dynamic.py']
onnx_config = dict(opset_version=13)
