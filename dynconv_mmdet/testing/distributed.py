# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""A data-parallel training worker for tests (gloo, on the CPU).

It lives in the package so that processes started by
``torch.multiprocessing.spawn`` can import it.
"""
import json
import os
import os.path as osp
import socket

import torch
from mmengine.config import Config


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def ddp_train_worker(rank: int, world_size: int, port: int, cfg_file: str,
                     out_dir: str, iters: int) -> None:
    """One rank of a data-parallel training of ``cfg_file``'s model.

    The model wrapping mmengine's Runner applies on GPUs
    (MMDistributedDataParallel, broadcast_buffers=False,
    find_unused_parameters=False), on the CPU with gloo; ``iters`` training
    steps, then ``<out_dir>/rank<rank>.json`` records the number of trainable
    parameters, those that got no finite gradient, the largest difference of
    the parameters between ranks and the losses. Start it with
    ``torch.multiprocessing.spawn``.
    """
    import torch.distributed as dist
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.model import MMDistributedDataParallel
    from mmengine.optim import build_optim_wrapper
    from mmengine.runner import Runner

    import dynconv_mmdet  # noqa: F401

    torch.set_num_threads(1)
    os.environ.update(
        MASTER_ADDR='127.0.0.1',
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size))
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    try:
        register_all_modules(init_default_scope=True)
        torch.manual_seed(rank)  # different init on each rank on purpose
        cfg = Config.fromfile(cfg_file)
        model = MODELS.build(cfg.model)
        model.init_weights()
        # as Runner._init_model_weights: rank 0's weights everywhere
        for value in model.state_dict().values():
            dist.broadcast(value, 0)
        ddp = MMDistributedDataParallel(
            module=model,
            broadcast_buffers=False,
            find_unused_parameters=False)
        optim_wrapper = build_optim_wrapper(ddp, cfg.optim_wrapper)
        loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)

        trainable = {
            n: p
            for n, p in model.named_parameters() if p.requires_grad
        }
        got_grad = set()
        for name, param in trainable.items():
            param.register_hook(
                lambda grad, name=name: got_grad.add(name)
                if grad is not None and torch.isfinite(grad).all() else None)
        ddp.train()
        losses = []
        data_iter = iter(loader)
        for _ in range(iters):
            try:
                data = next(data_iter)
            except StopIteration:
                data_iter = iter(loader)
                data = next(data_iter)
            log_vars = ddp.train_step(data, optim_wrapper)
            losses.append(float(log_vars['loss']))

        flat = torch.cat([p.detach().flatten() for p in trainable.values()])
        gathered = [torch.empty_like(flat) for _ in range(world_size)]
        dist.all_gather(gathered, flat)
        result = dict(
            rank=rank,
            num_trainable=len(trainable),
            no_grad=sorted(set(trainable) - got_grad),
            max_diff=max(float((g - flat).abs().max()) for g in gathered),
            losses=losses)
        with open(osp.join(out_dir, f'rank{rank}.json'), 'w') as f:
            json.dump(result, f)
    finally:
        dist.destroy_process_group()
