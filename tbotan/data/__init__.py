"""The data: the job spec, the Zarr store's schema and access, the learning targets (C_B, E_jk, propensity)
and the Dask pipeline that fills a store.

May import: ``tbotan.md``, ``tbotan.hpc``, zarr, dask / distributed (``pipeline``, ``driver``, ``importers``), vesin
(``targets``), ASE (``configurations``). ``datasets`` knows the published data sets' file layouts; ``runs`` the
store's run layout (models, predictions).
The learning stack reads ``spec`` and ``store``, so those two import neither openmm nor dask.
"""
