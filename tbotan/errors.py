"""Every way tbotan refuses, in one place: ``TbotanError`` and its subclasses.

A ``TbotanError`` is an expected failure (bad input, a state the user can change): its message names the
cause (file, field, temperature, configuration) and, where there is one, the command to run next. The
``tbotan`` command prints it as one line and exits 1; any other exception is a bug and shows its traceback.
Each class also derives from the built-in error it refines (``ValueError``, ``RuntimeError``, ...), so code
that catches those keeps working. Imports nothing.
"""

from __future__ import annotations


class TbotanError(Exception):
    """The base of every error tbotan raises on purpose."""


# ---------------------------------------------------------------- the MD core (tbotan.md)


class ConfigurationError(TbotanError, ValueError):
    """A configuration that cannot be used: an extended XYZ file with an unknown species, a missing or
    non-cubic Lattice, NaN positions or overlapping particles (the message names the file), or a box the
    potential cannot hold (shorter than twice the A-A cutoff)."""


class PlatformError(TbotanError, ValueError):
    """An OpenMM platform or precision that this machine does not have (the message lists those it has)."""


class BlowUp(TbotanError, FloatingPointError):
    """A run produced a non-finite energy or position (time step too large, overlapping particles)."""


class FireNotConverged(TbotanError, RuntimeError):
    """FIRE stopped (step limit, or no progress) above its mean-force tolerance; the message gives the
    residual reached. Nothing is written for that configuration."""


class TauAlphaError(TbotanError, RuntimeError):
    """tau_alpha could not be measured: the energy did not reach a plateau, or F_s(q, t) did not settle."""


# ---------------------------------------------------------------- data and cluster (tbotan.data, tbotan.hpc)


class SpecError(TbotanError, ValueError):
    """An invalid job spec; ``problems`` is the list of (field path, reason), all reported at once."""

    def __init__(self, problems: list[tuple[str, str]], source: str = "job spec"):
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(f"  {p}: {r}" for p, r in problems))


class StoreError(TbotanError, RuntimeError):
    """A store that cannot be used as asked (missing, half-made, written by another spec, ...)."""


class Terminated(SystemExit):
    """SIGTERM (SLURM's notice before the walltime or a preemption) or SIGHUP: the command stops where it is,
    leaving everything finished in the store; rerunning the same command goes on from there. Not a
    ``TbotanError`` and not an ``Exception``, on purpose: no ``except Exception`` on the way may swallow it."""

    def __init__(self, signum: int):
        import signal

        self.signum = signum
        name = signal.Signals(signum).name
        super().__init__(f"stopped by {name}: everything finished so far is kept; rerun the same command to go on")


class StoreLocked(StoreError):
    """Another live process is writing the store (the message names its host, pid and start time)."""


class ProfileError(TbotanError, ValueError):
    """A cluster profile that cannot be used (the message names the file and the field), or a cluster that
    cannot be reached from here (sbatch missing, a partition that does not exist, mpi4py missing)."""


class NoWorkers(TbotanError, RuntimeError):
    """No Dask worker has been connected for the profile's ``worker_timeout``; the message says why the
    scheduler is waiting. Everything finished so far is in the store."""


class SimulationFailed(TbotanError, RuntimeError):
    """Some configurations failed (each recorded in the store's ``errors`` attribute); the rest is complete."""


class DataSetError(TbotanError, ValueError):
    """A published data set's file that cannot be imported (another N or box, a missing key, NaN positions,
    types that are not two species, two files claiming one configuration, ...): the message names the file."""


# ---------------------------------------------------------------- the cost of a job (tbotan.plan)


class PlanError(TbotanError, ValueError):
    """No rates to plan with (no file where they were looked for), or a rates file that cannot be read; the
    message says to run ``tbotan plan --calibrate``."""


# ---------------------------------------------------------------- learning and analysis (tbotan.learn, tbotan.analysis)


class TrainingError(TbotanError, RuntimeError):
    """Training cannot go on (NaN loss, incompatible checkpoint, no data, impossible settings)."""


class NonFiniteError(TrainingError):
    """A NaN/inf loss, gradient or parameter: that seed stops, the others go on."""


class EvaluationError(TbotanError, RuntimeError):
    """Evaluation cannot run as asked (no trained model, no test configuration, ...)."""


class ReportError(TbotanError, RuntimeError):
    """The report cannot be made from this store yet (names the stage to run)."""
