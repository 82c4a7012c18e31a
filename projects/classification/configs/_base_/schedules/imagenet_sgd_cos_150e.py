# MobileNetV2 recipe of the ODConv paper: SGD, 150 epochs, batch 256
# (8 x 32), lr 0.05 with cosine decay to 0 (per iteration), momentum 0.9,
# weight decay 4e-5.
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=4e-5))

param_scheduler = dict(
    type='CosineAnnealingLR',
    by_epoch=True,
    begin=0,
    end=150,
    T_max=150,
    eta_min=0.0,
    convert_to_iter_based=True)

train_cfg = dict(by_epoch=True, max_epochs=150, val_interval=1)
val_cfg = dict()
test_cfg = dict()

# lr 0.05 is for a total batch of 256; `--auto-scale-lr` rescales it.
auto_scale_lr = dict(base_batch_size=256)
