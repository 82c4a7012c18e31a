_base_ = ['./instance-seg_onnxruntime_dynamic.py']
onnx_config = dict(opset_version=13)
