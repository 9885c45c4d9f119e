"""tbotan: T-BOTAN — learning glassy dynamics from static structure (Kob–Andersen, OpenMM, Zarr, PyTorch).

Where things live:
    kalj.py        the potential (shifted-force KA LJ as an OpenMM System) and the system's constants
    engine.py      OpenMM platforms and precision (which platform runs MD, which runs double precision)
    fire.py        FIRE quench to the inherent structure (a CustomIntegrator)
    dynamics.py    equilibration and iso-configurational NVE replicas
    targets.py     C_B, E_jk, propensity and the graph's edges (vesin neighbour lists)
    relaxation.py  S(q), F_s(q, t) and tau_alpha
    xyz.py         extended XYZ input and output
    cli.py         the ``tbotan`` command
"""
__version__ = "0.1.0"
