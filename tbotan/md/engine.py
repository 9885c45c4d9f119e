"""OpenMM platforms and contexts: which platform runs what, at which precision.

The MD platform of a process (``default_platform``) is what its cluster profile's ``platform`` says, resolved on
each worker at start (``resolve_platform``): ``auto`` takes CUDA, then HIP, then OpenCL on a GPU device, else the
CPU platform; a named one that does not work there is an error naming what to install, never a silent CPU run.

Two precisions are asked for:
- ``"mixed"`` for molecular dynamics: the process's platform (CUDA, HIP or OpenCL in mixed precision, or the CPU
  platform with its single-precision forces, which is what MD needs and is fast);
- ``"double"`` for energies, forces, the end of the FIRE quench and every stored residual: the Reference platform.
  CUDA, HIP and OpenCL sum forces in 64-bit fixed point scaled by 2^32 in every precision mode (resolution
  ~2.3e-10), so they cannot measure a mean force of 1e-12; their double mode runs the bulk of a quench on a GPU
  (``tbotan.md.fire``).

The CPU platform has no Precision property: its forces carry single-precision error (measured in
docs/physics.md), so it never serves a ``"double"`` request.
"""

from __future__ import annotations

import functools
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import openmm
from openmm import unit

from ..errors import BlowUp, PlatformError
from . import potential


@contextmanager
def blowup_guard(what: str):
    """Turn OpenMM's NaN exceptions inside the block into a BlowUp naming ``what``."""
    try:
        yield
    except openmm.OpenMMException as e:
        if "nan" in str(e).lower():
            raise BlowUp(f"{what}: {e} (a blow-up: time step too large or overlapping particles)") from None
        raise


def visible_gpus(environ=None) -> int | None:
    """How many GPUs this process may use: the length of CUDA_VISIBLE_DEVICES (or HIP_VISIBLE_DEVICES /
    ROCR_VISIBLE_DEVICES) as SLURM or the user set it; else the NVIDIA device files /dev/nvidia<k>; None when
    nothing tells."""
    environ = os.environ if environ is None else environ
    for var in ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES"):
        if var in environ:
            return len([d for d in environ[var].split(",") if d.strip() not in ("", "-1", "NoDevFiles")])
    try:
        return len([f for f in os.listdir("/dev") if re.fullmatch(r"nvidia\d+", f)]) or None
    except OSError:
        return None


def device_index(position: int, gpus: int | None) -> int | None:
    """The GPU (an index among the visible ones) of the worker at ``position`` among its job's (or LocalCluster's)
    processes: ``position % gpus`` where the process sees several GPUs, None (the platform's own choice) where it
    sees one or the count is unknown."""
    if gpus is None or gpus <= 1:
        return None
    return position % gpus


@dataclass(frozen=True)
class PlatformChoice:
    name: str
    properties: dict

    def describe(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in sorted(self.properties.items()))
        return f"{self.name}({extra})" if extra else self.name


def available_platforms() -> list[str]:
    return [openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())]


GPU_PLATFORMS = ("CUDA", "HIP", "OpenCL")
PLATFORMS = ("auto", *GPU_PLATFORMS, "CPU")  # what a cluster profile's ``platform`` may say
INSTALL = {  # what to install when a platform is asked for and OpenMM does not have it
    "CUDA": "pip install 'tbotan[cuda12]' (OpenMM-CUDA-12; 'tbotan[cuda13]' for a CUDA 13 driver)",
    "HIP": "pip install 'tbotan[hip7]' (OpenMM-HIP-7; 'tbotan[hip6]' for ROCm 6)",
    "OpenCL": "an OpenCL driver (ICD) for the device: the GPU vendor's, or Debian's pocl-opencl-icd for a CPU",
    "CPU": "pip install openmm",
}
PLATFORM_ENV = "TBOTAN_PLATFORM"  # the MD platform of this process (set on every worker from the profile)
DEVICE_ENV = "TBOTAN_DEVICE_INDEX"  # its GPU among the visible ones (set where a worker sees several)
_PROBED: dict = {}


def probe(name: str) -> dict:
    """Create a one-particle context on platform ``name`` and return its properties (DeviceName, ...); raises
    PlatformError naming the cause and what to install. Cached per process."""
    if name in _PROBED:
        return _PROBED[name]
    if name not in available_platforms():
        failures = "; ".join(f for f in openmm.Platform.getPluginLoadFailures() if name.lower() in f.lower())
        raise PlatformError(
            f"OpenMM platform {name!r} is not installed here (have: {', '.join(available_platforms())}"
            + (f"; plugin failed to load: {failures}" if failures else "")
            + f"): {INSTALL.get(name, 'see OpenMM install docs')}"
        )
    platform = openmm.Platform.getPlatformByName(name)
    system = openmm.System()
    system.addParticle(1.0)
    props = {"DeviceIndex": os.environ[DEVICE_ENV]} if name in GPU_PLATFORMS and os.environ.get(DEVICE_ENV) else {}
    try:
        context = openmm.Context(system, openmm.VerletIntegrator(0.001), platform, props)
    except Exception as e:  # noqa: BLE001 (OpenMMException, or a driver error)
        raise PlatformError(
            f"OpenMM platform {name!r} is installed but cannot run here: {str(e).strip()} "
            f"(no {name} device or driver on this node?)"
        ) from None
    _PROBED[name] = {k: platform.getPropertyValue(context, k) for k in platform.getPropertyNames()}
    del context
    return _PROBED[name]


def opencl_device_is_cpu(properties: dict) -> bool:
    """Whether an OpenCL context runs on a CPU (POCL's pthread/cpu devices, Intel's CPU runtime): ``auto``
    never picks such a device (the CPU platform is faster there)."""
    platform_name = properties.get("OpenCLPlatformName", "")
    device = properties.get("DeviceName", "")
    if "Portable Computing Language" in platform_name:
        return device.startswith(("pthread", "cpu", "basic"))
    return "CPU" in platform_name or "CPU" in device.split("-")[0]


def _opencl_gpu_possible() -> bool:
    """False when every registered OpenCL driver (ICD) is POCL's, which runs on the CPU: then ``auto`` need not
    create an OpenCL context (a second, and a warning) to find out."""
    where = os.environ.get("OCL_ICD_VENDORS", "/etc/OpenCL/vendors")
    try:
        icds = [os.path.join(where, f) for f in os.listdir(where) if f.endswith(".icd")]
    except NotADirectoryError:
        icds = [where]
    except OSError:
        return True  # no vendor folder: let OpenMM's own search tell
    for icd in icds:
        try:
            library = open(icd).read()
        except OSError:
            return True
        if "pocl" not in library.lower():
            return True
    return False


def resolve_platform(requested: str = "auto") -> str:
    """The MD platform a worker uses for a profile's ``platform``: ``auto`` is CUDA, then HIP, then OpenCL on a
    GPU device, else CPU; a named one must work here, or PlatformError says what to install."""
    if requested not in PLATFORMS:
        raise PlatformError(f"platform must be one of {', '.join(PLATFORMS)}, not {requested!r}")
    if requested != "auto":
        probe(requested)
        return requested
    for name in GPU_PLATFORMS:
        if name not in available_platforms() or (name == "OpenCL" and not _opencl_gpu_possible()):
            continue
        try:
            props = probe(name)
        except PlatformError:
            continue
        if name != "OpenCL" or not opencl_device_is_cpu(props):
            return name
    return "CPU"


def default_platform() -> str:
    """This process's MD platform: ``TBOTAN_PLATFORM`` where set (a worker of a cluster profile), else ``auto``,
    resolved once per process (every MD context asks; a GPU plugin without a device would otherwise be probed,
    and fail, each time)."""
    name = os.environ.get(PLATFORM_ENV, "auto")
    return _auto_platform() if name == "auto" else name


@functools.cache
def _auto_platform() -> str:
    return resolve_platform("auto")


def choose_platform(
    precision: str = "mixed", name: str | None = None, threads: int | None = None, deterministic: bool = True
) -> PlatformChoice:
    """The platform for ``precision`` ("mixed" or "double"); ``name`` forces one ("CPU", "CUDA", ...).

    "mixed" (MD) defaults to this process's platform (``default_platform``); "double" defaults to Reference, the
    one platform whose forces are summed in double precision (CUDA, HIP and OpenCL accumulate them in 64-bit fixed
    point, resolution 2^-32 ~ 2.3e-10, in every precision mode). On a GPU platform the device is the one
    ``TBOTAN_DEVICE_INDEX`` names, if set.

    ``threads`` sets the CPU platform's thread count (default: OPENMM_CPU_THREADS, else one thread when
    ``deterministic``, else all cores). ``deterministic`` (default) asks for bit-identical re-runs:
    DeterministicForces on and, on the CPU, one thread (several threads are not bit-identical even
    with DeterministicForces).
    """
    if precision not in ("mixed", "double"):
        raise PlatformError(f"precision must be 'mixed' or 'double', not {precision!r}")
    if name is None:
        name = default_platform() if precision == "mixed" else "Reference"
    have = available_platforms()
    if name not in have:
        raise PlatformError(
            f"OpenMM platform {name!r} is not available here (have: {', '.join(have)}): {INSTALL.get(name, '')}"
        )
    props: dict = {}
    if name in GPU_PLATFORMS:
        props["Precision"] = precision
        if name in ("CUDA", "HIP"):
            props["DeterministicForces"] = "true" if deterministic else "false"
        if os.environ.get(DEVICE_ENV):
            props["DeviceIndex"] = os.environ[DEVICE_ENV]
    elif name == "CPU":
        if precision == "double":
            raise PlatformError("the CPU platform has no double precision: use Reference (or CUDA) for 'double'")
        # Measured here: with several threads, DeterministicForces=true still lets two runs from the
        # same state part by ~1e-5 within 200 steps; one thread per context is bit-identical.
        # Parallelism comes from running many contexts (replicas, configurations) side by side.
        threads = threads or int(os.environ.get("OPENMM_CPU_THREADS", 0)) or (1 if deterministic else None)
        if threads:
            props["Threads"] = str(threads)
        props["DeterministicForces"] = "true" if deterministic else "false"
    return PlatformChoice(name, props)


def make_context(
    system: openmm.System,
    integrator: openmm.Integrator,
    choice: PlatformChoice,
    positions: np.ndarray,
    velocities: np.ndarray | None = None,
) -> openmm.Context:
    platform = openmm.Platform.getPlatformByName(choice.name)
    context = openmm.Context(system, integrator, platform, dict(choice.properties))
    context.setPositions(np.ascontiguousarray(positions, dtype=np.float64))
    if velocities is not None:
        context.setVelocities(np.ascontiguousarray(velocities, dtype=np.float64))
    return context


def read_state(context: openmm.Context, positions=True, velocities=False, forces=False, energy=False) -> dict:
    """Plain NumPy arrays (reduced units) of what is asked; positions are not wrapped (continuous).
    OpenMM's nm, ps, kJ/mol are sigma_AA, tau_LJ, eps_AA (``tbotan.md.potential``), so each is read in those."""
    state = context.getState(getPositions=positions, getVelocities=velocities, getForces=forces, getEnergy=energy)
    out = {}
    if positions:
        out["positions"] = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    if velocities:
        out["velocities"] = state.getVelocities(asNumpy=True).value_in_unit(unit.nanometer / unit.picosecond)
    if forces:
        out["forces"] = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
    if energy:
        out["potential_energy"] = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        out["kinetic_energy"] = state.getKineticEnergy().value_in_unit(unit.kilojoule_per_mole)
    return out


def energy_and_forces(
    types: np.ndarray, positions: np.ndarray, box: float, choice: PlatformChoice | None = None
) -> tuple[float, np.ndarray]:
    """Total potential energy and forces (N, 3) of a configuration, in double precision by default."""
    choice = choice or choose_platform("double")
    context = make_context(potential.make_system(types, box), openmm.VerletIntegrator(0.001), choice, positions)
    s = read_state(context, positions=False, forces=True, energy=True)
    return s["potential_energy"], s["forces"]


def pressure(
    types: np.ndarray, positions: np.ndarray, box: float, temperature: float, choice: PlatformChoice | None = None
) -> float:
    """The pressure rho T - dU/dV of a configuration at ``temperature`` (reduced units), with the virial part from
    the energies of the configuration scaled affinely by 1 +- 1e-6 (a central difference; OpenMM has no virial).
    For a pair potential this is rho T + sum_ij r_ij . f_ij / (3V), LAMMPS' `compute pressure` with that T."""
    x = np.asarray(positions, dtype=np.float64)
    h = 1e-6
    up, _ = energy_and_forces(types, x * (1 + h), box * (1 + h), choice)
    down, _ = energy_and_forces(types, x * (1 - h), box * (1 - h), choice)
    volume = box**3
    return len(x) / volume * temperature - (up - down) / (volume * ((1 + h) ** 3 - (1 - h) ** 3))


def md_context(
    types,
    box: float,
    integrator: openmm.Integrator,
    positions,
    velocities=None,
    platform: str | None = None,
    remove_cm_motion: bool = False,
) -> openmm.Context:
    """A context of the KA system for dynamics: mixed precision on ``platform`` (default: CUDA if present, else CPU).
    ``remove_cm_motion`` adds a CMMotionRemover (a thermostat then counts 3N - 3 degrees of freedom)."""
    system = potential.make_system(types, box)
    if remove_cm_motion:
        system.addForce(openmm.CMMotionRemover(1000))
    return make_context(system, integrator, choose_platform("mixed", name=platform), positions, velocities)


def mean_force(forces: np.ndarray) -> float:
    """Mean force magnitude per particle, the FIRE convergence measure of docs/method.md §2.2."""
    return float(np.linalg.norm(forces, axis=1).mean())
