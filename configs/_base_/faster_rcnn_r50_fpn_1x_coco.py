# Faster R-CNN, ResNet-50 + FPN, 1x schedule (12 epochs) on COCO.
#
# Everything (model, COCO data pipeline, SGD lr 0.02 for 16 images with
# 500-iteration linear warm-up and x0.1 at epochs 8 and 11, runtime) comes
# from MMDetection's own config; this base only registers the plugin so that
# the dynamic-convolution backbones can be named in the configs above it.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['dynconv_mmdet'], allow_failed_imports=False)

# The 1x schedule is defined for 16 images per iteration (8 GPUs x 2).
# Pass `--auto-scale-lr` to tools/train.py to scale it to another batch.
auto_scale_lr = dict(enable=False, base_batch_size=16)
