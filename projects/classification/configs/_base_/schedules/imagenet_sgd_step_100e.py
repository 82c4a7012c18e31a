# ResNet recipe of the ODConv paper: SGD, 100 epochs, batch 256 (8 x 32),
# lr 0.1 divided by 10 every 30 epochs, momentum 0.9, weight decay 1e-4.
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4))

param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[30, 60, 90], gamma=0.1)

train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=1)
val_cfg = dict()
test_cfg = dict()

# lr 0.1 is for a total batch of 256; `--auto-scale-lr` rescales it.
auto_scale_lr = dict(base_batch_size=256)
