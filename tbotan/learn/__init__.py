"""The learning stack: graphs from the store, the T-BOTAN network, the loss, training with checkpoints and
torch.distributed, and evaluation of trained models.

May import: torch, zarr, ``tbotan.data.spec`` / ``tbotan.data.store``, ``tbotan.analysis.fourpoint``,
``tbotan.core``. Never openmm or dask: it runs on GPU nodes under torchrun / srun (tests/test_layers.py).
"""
