"""tbotan: T-BOTAN — learning glassy dynamics from static structure (Kob–Andersen, OpenMM, Zarr, PyTorch).

The package is split by stack; each subpackage's docstring says what it may import (tests/test_layers.py
enforces it):

    core.py      constants (the KA parameters, Table I, cutoffs) and periodic-box helpers; NumPy only
    errors.py    TbotanError, the base of every domain error
    md/          the potential (OpenMM System), platforms, FIRE, dynamics, S(q) / F_s / tau_alpha, extended XYZ
    data/        the job spec, the Zarr store and its run layout, the targets (C_B, E_jk, propensity), the Dask
                 pipeline, the published data sets and their import, single configurations of any format
    hpc/         cluster profiles (LocalCluster, SLURMCluster, dask-mpi), SLURM job scripts
    learn/       graphs, the T-BOTAN model, the loss, training and checkpoints, torch.distributed, evaluation, the
                 portable model file and prediction on one graph
    predict.py   ``tbotan predict``: a trained model on any configuration file (quench, graph, predict, write)
    analysis/    the four-point S_B(q), the report (numbers, then figures), the predicted C_B map
    cli/         the ``tbotan`` command and ``tbotan run``
"""

__version__ = "0.1.0"
