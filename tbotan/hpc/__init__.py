"""Cluster glue: cluster profiles (LocalCluster, dask-jobqueue's SLURMCluster, dask-mpi) and the SLURM job
scripts that train, evaluate and report.

May import: dask, distributed, dask-jobqueue, dask-mpi, pydantic, yaml. Never torch (a training job is
written and submitted from here, and run by ``tbotan train`` on its nodes) and nothing of ``tbotan.learn``.
"""
