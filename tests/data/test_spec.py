"""The job spec: the shipped job files, defaults, every refusal with its field path, splits, canonical JSON."""

import json
from pathlib import Path

import numpy as np
import pytest

from tbotan.data.spec import TABLE_I, JobSpec, SpecError, load_spec, parse_spec

JOBS = Path(__file__).resolve().parents[2] / "jobs"
MINIMAL = """\
# the data to generate, nothing else
N: 4096
temperatures:
  - 0.44
  - 0.47
  - 0.50
  - 0.56
  - 0.64
  - 0.80
"""


def write(tmp_path, text, name="job.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(data) -> dict[str, str]:
    """field path -> reason of every problem ``data`` has (fails if it is valid)."""
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    return dict(info.value.problems)


def base(**fields):
    return {"N": 500, "temperatures": [0.64, 0.8], **fields}


@pytest.mark.parametrize("name", ["ci", "quickstart", "paper", "botan", "glassbench"])
def test_job_files_validate(name):
    spec = load_spec(JOBS / f"{name}.yaml")
    assert spec.training_temperatures and set(spec.training_temperatures) <= set(spec.temperatures)
    for T in spec.temperatures:
        assert spec.measure_tau or spec.tau_for(T) > 0
        assert len(spec.split_for(T)) == spec.configurations_for(T)


def test_paper_job_is_the_paper_protocol():
    spec = load_spec(JOBS / "paper.yaml")
    assert spec.N == 4096 and spec.replicas == 32 and spec.times == [1.0]
    assert spec.measure_tau  # its own alpha times (docs/tau_alpha.md), not Table I's
    assert spec.training_temperatures == [0.44, 0.47, 0.64, 0.8]
    assert (spec.training.seeds, spec.training.epochs, spec.training.switch_epoch) == (5, 2000, 1000)
    for T in spec.temperatures:
        counts = np.bincount(spec.split_for(T), minlength=3)
        assert list(counts) == ([100, 20, 30] if T in spec.training_temperatures else [0, 0, 30])


def test_minimal_spec_gets_the_defaults(tmp_path):
    spec = load_spec(write(tmp_path, MINIMAL))
    assert len(MINIMAL.splitlines()) <= 10
    assert spec.density == 1.2 and spec.times == [1.0] and spec.replicas == 32 and spec.dt == 0.005
    assert spec.tau_alpha == TABLE_I and not spec.measure_tau
    assert spec.tau_for(0.44) == 4120 and spec.tau_for("0.8") == 3.42 and spec.tau_for(0.5 + 1e-12) == 217
    assert all(spec.configurations_for(T) == 10 for T in spec.temperatures)
    assert spec.training_temperatures == spec.temperatures
    assert spec.fire.tolerance == 1e-12 and spec.fire.n_min == 5 and spec.store_dtype == "float32"
    assert spec.training.lambda_g == 1e-2 and spec.training.variants == ["both"]
    assert spec.training.decoder == "shared" and spec.evaluation.slab == pytest.approx([11.1 / 15.06, 11.9 / 15.06])
    assert spec == JobSpec.model_validate({"N": 4096, "temperatures": list(TABLE_I)})


def test_mapping_keys_as_strings_and_measure():
    spec = JobSpec.model_validate(base(tau_alpha="measure", configurations={"0.64": 4, 0.8: 6}))
    assert spec.measure_tau and spec.tau_for(0.64) is None
    assert spec.configurations_for(0.64) == 4 and spec.configurations_for("0.80") == 6
    given = JobSpec.model_validate(base(temperatures=[0.9, 0.44], tau_alpha={"0.9": 2.0}))
    assert given.tau_alpha == {0.44: 4120.0, 0.9: 2.0}  # Table I fills the paper temperatures not named
    with pytest.raises(KeyError):
        spec.configurations_for(0.5)


def test_yaml_exponent_without_dot_is_a_float(tmp_path):
    spec = load_spec(write(tmp_path, "N: 500\ntemperatures: [0.8]\nfire:\n  tolerance: 1e-10\n"))
    assert spec.fire.tolerance == 1e-10


@pytest.mark.parametrize(
    "data, path, reason",
    [
        (base(bogus=1), "bogus", "unknown field"),
        (base(fire={"tol": 1e-10}), "fire.tol", "unknown field"),
        (base(training={"epoch": 3}), "training.epoch", "did you mean 'epochs'"),
        (base(replicas="many"), "replicas", "valid integer"),
        (base(N=500.0), "N", "valid integer"),
        (base(temperatures="0.8"), "temperatures", "list"),
        (base(N=0), "N", "positive"),
        (base(N=-5), "N", "positive"),
        (base(N=100), "N", "box L"),
        (base(temperatures=[0.8, 0.0]), "temperatures.1", "positive"),
        (base(temperatures=[-0.5]), "temperatures.0", "positive"),
        (base(temperatures=[0.8, 6.0]), "temperatures.1", "at most"),
        (base(temperatures=[0.8, 0.80]), "temperatures.1", "repeats"),
        (base(training={"temperatures": [0.64, 0.55]}), "training.temperatures.1", "0.55 is not in temperatures"),
        (base(training={"epochs": 10}), "training.switch_epoch", "never switch on"),
        (base(training={"variants": ["both", "cage"]}), "training.variants.1", "both"),
        (base(training={"variants": ["both", "both"]}), "training.variants", "repeats"),
        (base(training={"lambda_g": [0.0, -1.0]}), "training.lambda_g.1", ">= 0"),
        (base(replicas=1), "replicas", "greater than or equal to 2"),
        (base(dt=0.02), "dt", "less than or equal to 0.01"),
        (base(temperatures=[0.64, 0.9]), "tau_alpha.0.9", "no tau_alpha for temperature 0.9"),
        (base(tau_alpha={0.8: -1.0}), "tau_alpha.0.8", "must be positive"),
        (base(tau_alpha={0.9: 1.0}), "tau_alpha.0.9", "not in temperatures"),
        (base(tau_alpha="guess"), "tau_alpha", "measure"),
        (base(times=[1.0, 0.5]), "times.1", "increasing"),
        (base(configurations=0), "configurations", "positive"),
        (base(configurations={0.64: 5}), "configurations.0.8", "no count"),
        (base(configurations=2, splits={"validation": 1, "test": 1}), "splits", "no training"),
        (base(configurations=3, splits={"test": 5}), "splits", "no training"),
        (base(splits={"validation": 1.5}), "splits.validation", "fraction"),
        (base(splits={"test": -1}), "splits.test", "count"),
        (base(store_dtype="float16"), "store_dtype", "float32"),
        (base(seed=-1), "seed", "greater than or equal to 0"),
        (base(evaluation={"slab": [0.8, 0.7]}), "evaluation.slab", "low < high"),
        ({"temperatures": [0.8]}, "N", "missing"),
    ],
)
def test_refusals_name_the_field_and_reason(data, path, reason):
    found = problems(data)
    assert path in found, found
    assert reason in found[path], found


def test_every_mistake_is_reported_together(tmp_path):
    text = MINIMAL + "replicas: 1\nunknown_field: 3\ntraining:\n  temperatures: [0.44, 0.55]\nfire:\n  tol: 1\nN: 0\n"
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, text.replace("N: 4096\n", "")))
    found = dict(info.value.problems)
    assert {"replicas", "unknown_field", "training.temperatures.1", "fire.tol", "N"} <= set(found)
    message = str(info.value)
    assert "job.yaml" in message and "training.temperatures.1: 0.55 is not in temperatures" in message
    assert "tau_alpha.0.9" in problems(base(temperatures=[0.64, 0.9], tau_alpha={0.8: 1.0, 0.9: -1}))


def test_malformed_yaml_gives_the_line(tmp_path):
    with pytest.raises(SpecError, match="line 3") as info:
        load_spec(write(tmp_path, "N: 500\ntemperatures: [0.8]\nfire: {tolerance: 1e-10\n"))
    assert "malformed YAML" in str(info.value)
    with pytest.raises(SpecError, match="line 3, column 12"):
        load_spec(write(tmp_path, "N: 500\ntemperatures: [0.8]\nreplicas: 4: 5\n"))
    with pytest.raises(SpecError, match="duplicate key 'N'"):
        load_spec(write(tmp_path, "N: 500\ntemperatures: [0.8]\nN: 600\n"))


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(tmp_path / "nope.yaml")
    with pytest.raises(SpecError, match="mapping"):
        load_spec(write(tmp_path, "- N: 500\n- temperatures: [0.8]\n"))
    with pytest.raises(SpecError, match="mapping"):
        load_spec(write(tmp_path, ""))


def test_split_counts_and_determinism():
    spec = JobSpec.model_validate(
        base(
            temperatures=[0.64, 0.72, 0.8],
            tau_alpha={0.72: 5.5},
            configurations={0.64: 40, 0.72: 7, 0.8: 13},
            training={"temperatures": [0.64, 0.8]},
            splits={"validation": 0.1, "test": 5},
        )
    )
    split = spec.split_for(0.64)
    assert split.dtype == np.int8 and list(np.bincount(split, minlength=3)) == [31, 4, 5]
    assert list(np.bincount(spec.split_for(0.8), minlength=3)) == [7, 1, 5]
    assert (spec.split_for(0.72) == 2).all() and len(spec.split_for(0.72)) == 7
    assert np.array_equal(split, JobSpec.model_validate(json.loads(spec.to_json())).split_for(0.64))
    assert np.flatnonzero(split == 2).tolist() == [4, 12, 20, 28, 36]  # spread evenly, not a block at the end
    assert split[0] == 0


def test_canonical_json_round_trip_and_equality():
    spec = load_spec(JOBS / "quickstart.yaml")
    again = JobSpec.model_validate(json.loads(spec.to_json()))
    assert again.to_json() == spec.to_json() and again == spec
    reordered = JobSpec.model_validate(base(temperatures=[0.8, 0.64], configurations={"0.8": 10, 0.64: 10}))
    assert reordered.to_json() == JobSpec.model_validate(base()).to_json()


def test_data_json_ignores_training_settings():
    spec = JobSpec.model_validate(base())
    retrained = JobSpec.model_validate(
        base(
            training={"epochs": 50, "switch_epoch": 10, "lambda_g": [0.0, 0.1], "temperatures": [0.8]},
            splits={"test": 1, "validation": 1},
            evaluation={"sq_q_max": 8.0},
        )
    )
    assert retrained.to_json() != spec.to_json()
    assert retrained.data_json() == spec.data_json()
    assert JobSpec.model_validate(base(N=864)).data_json() != spec.data_json()
    assert JobSpec.model_validate(base(replicas=8)).data_json() != spec.data_json()
    data_fields = "N density temperatures tau_alpha times configurations replicas dt equilibration decorrelation chains"
    assert set(json.loads(spec.data_json())) == {*data_fields.split(), "seed", "fire", "store_dtype", "dynamics"}
    assert JobSpec.model_validate(base(dynamics="langevin")).data_json() != spec.data_json()


def test_dynamics_field():
    """A bare name takes its parameters' defaults; parameters are the kind's own; bad values name the field."""
    from tbotan.data.spec import DYNAMICS_DEFAULTS
    from tbotan.md.dynamics import PARAMETERS

    assert {k: tuple(v) for k, v in DYNAMICS_DEFAULTS.items()} == PARAMETERS  # the spec fills what MD takes
    assert JobSpec.model_validate(base()).dynamics.parameters() == {"kind": "nve"}
    assert JobSpec.model_validate(base(dynamics="langevin")).dynamics.parameters() == {
        "kind": "langevin",
        "friction": 1.0,
        "zero_sum_noise": True,
    }
    nh = JobSpec.model_validate(base(dynamics={"kind": "nose-hoover", "time_constant": 0.2}))
    assert nh.dynamics.parameters() == {"kind": "nose-hoover", "time_constant": 0.2}
    for bad, where, why in [
        ({"kind": "langevin", "friction": -1.0}, "dynamics.friction", "greater than 0"),
        ({"kind": "nve", "friction": 1.0}, "dynamics.friction", "not a parameter of 'nve'"),
        ("brownian", "dynamics.kind", "'nve', 'nose-hoover' or 'langevin'"),
        ({"kind": "langevin", "gamma": 1.0}, "dynamics.gamma", "unknown field"),
    ]:
        with pytest.raises(SpecError) as e:
            parse_spec(base(dynamics=bad))
        assert any(p == where and why in r for p, r in e.value.problems), e.value.problems
