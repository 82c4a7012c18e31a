# ImageNet recipe of the KernelWarehouse release's ResNets (`main.py`
# defaults): AdamW, lr 4e-3 for a total batch of 4096, weight decay 0.05 on
# every parameter but the 1-D ones and the biases, 300 epochs, linear warm-up
# over the first 20 epochs, then cosine decay to 1e-6, both per iteration.
optim_wrapper = dict(
    optimizer=dict(
        type='AdamW', lr=4e-3, betas=(0.9, 0.999), eps=1e-8,
        weight_decay=0.05),
    # The release's no-decay rule, `ndim == 1 or name.endswith('.bias')`:
    # mmengine's `flat_decay_mult` (1-D parameters: norms, biases, the
    # KernelWarehouse `basis_bias`) and `bias_decay_mult` (biases).
    paramwise_cfg=dict(bias_decay_mult=0.0, flat_decay_mult=0.0),
)

param_scheduler = [
    # The release rises from 0 (`np.linspace(0, lr, ...)`); mmengine's
    # LinearLR needs a start factor > 0.
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=True,
        begin=0,
        end=20,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        eta_min=1e-6,
        by_epoch=True,
        begin=20,
        end=300,
        T_max=280,
        convert_to_iter_based=True),
]

train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)
val_cfg = dict()
test_cfg = dict()

# lr 4e-3 is for a total batch of 4096 (the release: 8 GPUs x 128 images x 4
# accumulation steps); `--auto-scale-lr` rescales it to another total batch.
auto_scale_lr = dict(base_batch_size=4096)
