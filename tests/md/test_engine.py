"""Platforms: which one a worker runs, what is refused, which device; FIRE's double-precision end on OpenCL
(POCL runs OpenCL on this CPU: Debian's pocl-opencl-icd, which .ci/run installs)."""

import numpy as np
import openmm
import pytest

from tbotan.errors import PlatformError
from tbotan.md import engine, fire, potential
from tests.helpers import ROOT, liquid

needs_opencl = pytest.mark.skipif(
    "OpenCL" not in engine.available_platforms(), reason="no OpenCL driver here (Debian: pocl-opencl-icd)"
)


def test_a_gpu_platform_that_is_not_installed_is_refused_naming_the_package():
    if "CUDA" in engine.available_platforms():
        pytest.skip("CUDA is installed here")
    with pytest.raises(PlatformError, match=r"'CUDA' is not installed here.*tbotan\[cuda12\]"):
        engine.resolve_platform("CUDA")
    with pytest.raises(PlatformError, match="one of auto, CUDA, HIP, OpenCL, CPU"):
        engine.resolve_platform("Metal")


def test_the_process_platform_and_device_come_from_the_environment(monkeypatch):
    """A worker's MD platform is TBOTAN_PLATFORM (set from its profile) and its GPU TBOTAN_DEVICE_INDEX; every
    double-precision request goes to Reference, the one platform that sums forces in double."""
    monkeypatch.setenv(engine.PLATFORM_ENV, "OpenCL")
    monkeypatch.setenv(engine.DEVICE_ENV, "1")
    md = engine.choose_platform("mixed")
    assert (md.name, md.properties) == ("OpenCL", {"Precision": "mixed", "DeviceIndex": "1"})
    assert engine.choose_platform("double").name == "Reference"
    assert engine.choose_platform("double", name="OpenCL").properties["Precision"] == "double"
    monkeypatch.setenv(engine.PLATFORM_ENV, "CPU")
    assert engine.choose_platform("mixed").properties == {"Threads": "1", "DeterministicForces": "true"}


def test_gpus_are_counted_from_what_the_launcher_set_and_shared_by_position():
    assert engine.visible_gpus({"CUDA_VISIBLE_DEVICES": "2,3"}) == 2
    assert engine.visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == 0
    assert engine.visible_gpus({"ROCR_VISIBLE_DEVICES": "0,1,2,3"}) == 4
    assert [engine.device_index(p, 2) for p in range(4)] == [0, 1, 0, 1]
    assert engine.device_index(3, 1) is None and engine.device_index(0, None) is None


def test_opencl_cpu_devices_are_recognised():
    pocl = {"OpenCLPlatformName": "Portable Computing Language", "DeviceName": "pthread-skylake-avx512-Intel(R)"}
    intel_cpu = {"OpenCLPlatformName": "Intel(R) CPU Runtime for OpenCL(TM) Applications", "DeviceName": "Xeon"}
    nvidia = {"OpenCLPlatformName": "NVIDIA CUDA", "DeviceName": "NVIDIA H100 80GB HBM3"}
    assert engine.opencl_device_is_cpu(pocl) and engine.opencl_device_is_cpu(intel_cpu)
    assert not engine.opencl_device_is_cpu(nvidia)


@needs_opencl
def test_auto_never_picks_an_opencl_cpu_device(monkeypatch):
    monkeypatch.delenv(engine.PLATFORM_ENV, raising=False)
    picked = engine.resolve_platform("auto")
    if picked == "OpenCL":
        assert not engine.opencl_device_is_cpu(engine.probe("OpenCL"))
    elif "Portable Computing Language" in engine.probe("OpenCL").get("OpenCLPlatformName", ""):
        assert picked in ("CUDA", "HIP", "CPU")
    assert engine.resolve_platform("OpenCL") == "OpenCL"  # named, it is used whatever the device


@needs_opencl
def test_an_opencl_quench_ends_below_the_tolerance_by_reference_forces():
    """OpenCL (like CUDA and HIP) sums forces in 64-bit fixed point (2^-32): alone it reported a mean force of 0.0
    where Reference measures 5e-10. The quench runs there in double to ``gpu_handoff`` and ends on Reference; its
    residual is Reference's, below 1e-12, and it is the minimum the CPU path finds."""
    types, x, box = liquid(500, 0.8, duration=2.0)
    gpu = fire.quench(types, x, box, platform="OpenCL")
    cpu = fire.quench(types, x, box, platform="CPU")
    assert gpu.platform.startswith("OpenCL(Precision=double):") and "+Reference:" in gpu.platform
    _, forces = engine.energy_and_forces(types, gpu.positions, box)
    assert engine.mean_force(forces) == gpu.mean_force < 1e-12
    assert gpu.energy_per_particle == pytest.approx(cpu.energy_per_particle, abs=1e-9)
    assert np.abs(gpu.positions - cpu.positions).max() < 1e-5
    # what OpenCL itself reads at the minimum: fixed-point noise, far above the residual
    context = engine.make_context(
        potential.make_system(types, box),
        openmm.VerletIntegrator(0.001),
        engine.choose_platform("double", name="OpenCL"),
        gpu.positions,
    )
    opencl_reading = engine.mean_force(engine.read_state(context, positions=False, forces=True)["forces"])
    assert opencl_reading == 0.0 or opencl_reading > 1e-11  # measured: 5.9e-10 in double, 8e-5 in mixed


def test_every_install_hint_is_an_extra_of_setup_cfg_pinned_to_one_openmm():
    """The one command a refusal names (pip install 'tbotan[cuda12]', ...) exists, and each extra pins its
    platform plugin to the openmm it pins (a plugin's wheel does not ask for its openmm)."""
    import configparser
    import re

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    extras = cfg["options.extras_require"]
    for name in ("CUDA", "HIP"):
        for extra in re.findall(r"tbotan\[(\w+)\]", engine.INSTALL[name]):
            pins = dict(line.split("==") for line in extras[extra].split() if "==" in line)
            plugin = next(p for p in pins if p.startswith("OpenMM-"))
            assert pins["openmm"] == pins[plugin], extra


@needs_opencl
def test_an_opencl_quench_that_stops_above_the_tolerance_is_an_error_never_a_number():
    types, x, box = liquid(500, 0.8, duration=2.0)
    with pytest.raises(fire.FireNotConverged, match=r"OpenCL\(Precision=double\):\d+\+Reference:\d+.*by Reference"):
        fire.quench(types, x, box, fire.FireParameters(max_steps=300), platform="OpenCL")
