# Detection (Faster R-CNN, RTMDet, YOLOX) for ONNX Runtime, static shapes,
# opset 11.
_base_ = ['./_base_/onnxruntime_static.py']
