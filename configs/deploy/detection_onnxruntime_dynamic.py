# Detection for ONNX Runtime, free batch / height / width, opset 11.
_base_ = ['./_base_/onnxruntime_dynamic.py']
