# Faster R-CNN, ResNet-50 with FDConv (kernel_num 64) + FPN, 1x schedule on
# COCO: the SGD recipe of every other variant (mmdet's 1x: lr 0.02 for 16
# images, x0.1 at epochs 8 and 11), which is also the FDConv release's
# Faster R-CNN recipe (Linwei-Chen/FDConv, FDConv_detection/configs/
# faster_rcnn/faster_rcnn_r50_fpn_1x_coco_FDConv.py: 8 images x 2 GPUs;
# its `with_cp=True` only saves memory). FDConv has no temperature.
#
# ImageNet backbone: the dense `torchvision://resnet50`, the release's
# configs' start. The loader writes each dense bottleneck kernel into its
# FDConv's spectrum (FDConv2d.init_from_dense: the release's
# tools/convert_to_fdconv.py, done at load time, so there is no converter
# step); the attention and FBM keep their own init. The frozen stem and
# first stage freeze the spectra and norms while the attention and FBM
# train, as the release (`need_grad_list=['KSM', 'FBM']`); train from
# scratch with `--cfg-options model.backbone.init_cfg=None`. The released
# detector: tools/model_converters/fdconv_mmdet2_detector.py.
_base_ = './_base_/faster_rcnn_r50_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        preset='fdconv',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')))
