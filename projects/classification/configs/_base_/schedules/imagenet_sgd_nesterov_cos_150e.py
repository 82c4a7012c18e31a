# ImageNet recipe of the KernelWarehouse release's MobileNetV2 (its
# `configs/mobilenetv2_*/*.json` over the `main.py` defaults): SGD with
# Nesterov momentum 0.9 (the release's `opt='sgd'`), lr 0.05 for a total
# batch of 256, weight decay 4e-5 on every parameter but the 1-D ones and the
# biases, 150 epochs, no warm-up, cosine decay to 1e-6 per iteration.
optim_wrapper = dict(
    optimizer=dict(
        type='SGD', lr=0.05, momentum=0.9, nesterov=True, weight_decay=4e-5),
    # the release's no-decay rule, `ndim == 1 or name.endswith('.bias')`
    paramwise_cfg=dict(bias_decay_mult=0.0, flat_decay_mult=0.0),
)

param_scheduler = dict(
    type='CosineAnnealingLR',
    eta_min=1e-6,
    by_epoch=True,
    begin=0,
    end=150,
    T_max=150,
    convert_to_iter_based=True)

train_cfg = dict(by_epoch=True, max_epochs=150, val_interval=1)
val_cfg = dict()
test_cfg = dict()

# lr 0.05 is for a total batch of 256 (8 GPUs x 32 images);
# `--auto-scale-lr` rescales it.
auto_scale_lr = dict(base_batch_size=256)
