"""The MD core: the Kob–Andersen potential as an OpenMM System, platforms and precision, the FIRE quench,
equilibration and iso-configurational replicas, S(q), F_s(q, t) and tau_alpha, extended XYZ files.

May import: numpy, scipy, openmm and ``tbotan.core`` / ``tbotan.errors``. Never torch, dask or zarr: these
modules run inside Dask workers and behind ``tbotan energy`` / ``quench`` / ``tau``, which start without them
(tests/test_layers.py).
"""
