_base_ = ['./instance-seg_onnxruntime_static.py']
onnx_config = dict(opset_version=13)
