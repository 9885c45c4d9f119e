"""The learning stack: graphs from the store, the T-BOTAN network, the loss, training with checkpoints and
torch.distributed, and evaluation of trained models.

    graphs.py       graphs from the store, the augmentation
    model.py        the T-BOTAN network                       loss.py        the loss terms (docs/method.md §5)
    recipe.py       units, parameter groups, learning rate    precision.py   float32 or bfloat16 on this hardware
    scoring.py      one graph's terms, the objective, validation, the temperature head's health
    checkpoints.py  atomic checkpoint files, resume checks    train.py       the training loop, ``train``
    distributed.py  ranks, devices, process groups            evaluate.py    predictions on the test configurations
    compiled.py     torch.compile with a fall-back            memory.py      keeping freed memory between steps
    diagnostics.py  dead units, the embedding u
    portable.py     the portable model file (tbotan export model)   inference.py   one graph's predictions, every seed

May import: torch, zarr, ``tbotan.data.spec`` / ``tbotan.data.store`` / ``tbotan.data.runs`` (the run layout) /
``tbotan.data.lock`` / ``tbotan.data.targets`` (the graph's edges), ``tbotan.analysis.fourpoint`` /
``tbotan.analysis.embedding``, ``tbotan.core``. Never openmm or dask: it runs on GPU nodes
under torchrun / srun (tests/test_layers.py).
"""
