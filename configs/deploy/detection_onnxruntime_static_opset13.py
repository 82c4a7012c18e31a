_base_ = ['./detection_onnxruntime_static.py']
onnx_config = dict(opset_version=13)
