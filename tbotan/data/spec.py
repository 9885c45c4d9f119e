"""The job spec (YAML) of a KA-glass / T-BOTAN pipeline, validated before any work starts (docs/method.md §8.2).

``load_spec(path)`` reads and validates a file; every problem (malformed YAML, unknown field, wrong
type, impossible value, inconsistency between fields) becomes ONE ``SpecError`` listing them all as
``field.path: reason`` lines. ``JobSpec.model_validate(dict)`` does the same checks from Python
(raising pydantic's ValidationError; ``parse_spec`` turns it into a SpecError).

Normal form: temperatures are rounded to 6 decimals and sorted; ``tau_alpha`` becomes ``"measure"`` or
a full mapping T -> tau (Table I filling the paper temperatures not given); ``configurations`` a full
mapping T -> count; ``training.temperatures`` the explicit list. So two specs that mean the same
data have the same ``to_json()``.

One job, one module, although over 500 lines: the spec's fields and their checks are the public contract, and
reading them in one place (one pydantic model per section, in the order of a spec file) is what a user needs.

Splits (``split_for``): at a training temperature with C configurations, n_test = count or
floor(fraction C + 1/2), likewise n_validation; test configurations are spread evenly over the indices
(positions floor((i + 1/2) C / n_test)), validation evenly over the rest, the others are train.
Every configuration at a temperature not trained on is test.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from pathlib import Path
from typing import Any, Literal, Union

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ..core import CUTOFF_AA, TABLE_I
from ..errors import SpecError

T_MAX = 5.0
IMPORT_FIELDS = ("N", "density", "temperatures", "tau_alpha", "fire")
DATA_FIELDS = tuple(
    "N density temperatures tau_alpha times configurations replicas dt equilibration decorrelation "
    "chains seed fire store_dtype dynamics".split()
)  # the fields that define the data (a store is made of)
DYNAMICS_DEFAULTS = {  # each kind's parameters (tbotan.md.dynamics.PARAMETERS) and their defaults
    "nve": {},
    "nose-hoover": {"time_constant": 0.5},
    "langevin": {"friction": 1.0, "zero_sum_noise": True},
}


def _fail(problems: list[tuple[tuple, str]]):
    """Raise several (sub-path, reason) problems as one pydantic error (expanded again by ``parse_spec``)."""
    summary = "; ".join(".".join(map(str, p)) + (": " if p else "") + r for p, r in problems)
    raise PydanticCustomError("spec", "{summary}", {"summary": summary, "problems": problems})


def _T(x: Any) -> float:
    """A temperature (float or string) rounded to 6 decimals; ValueError('') if it is none."""
    t = round(float(x), 6) if isinstance(x, (int, float, str)) and not isinstance(x, bool) else math.nan
    if not math.isfinite(t):
        raise ValueError("")
    return t


def _known(T: float, temps: list[float]) -> bool:
    return any(abs(T - t) <= 1e-9 for t in temps)


def _positive(v: Any, integer: bool) -> float | int:
    if isinstance(v, bool) or not isinstance(v, int if integer else (int, float)):
        raise ValueError(f"must be {'an integer' if integer else 'a number'}, got {v!r}")
    if not (v >= 1 if integer else 0 < v < math.inf):
        raise ValueError(f"must be positive, got {v}")
    return v if integer else float(v)


def _per_T(v: Any, temps: list[float] | None, integer: bool, fill, missing: str) -> dict[float, Any]:
    """A full mapping T -> positive value from a mapping (keys floats or strings) or from one value for all T;
    ``fill(T)`` gives the value of a T not named (None: the problem ``missing``)."""
    if not isinstance(v, dict):
        try:
            v = {T: _positive(v, integer) for T in temps or []}
        except ValueError as e:
            raise ValueError(f"{e} (or a mapping temperature -> value)") from None
    out, problems = {}, []
    for key, x in v.items():
        try:
            T = _T(key)
            if temps is not None and not _known(T, temps):
                raise ValueError(f"{T} is not in temperatures")
            out[T] = _positive(x, integer)
        except ValueError as e:
            problems.append(((str(key),), str(e) or "not a temperature"))
    for T in temps or []:
        if T not in out and fill(T) is None:
            problems.append(((str(T),), missing.format(T=T)))
    if problems:
        _fail(problems)
    return {T: out[T] if T in out else fill(T) for T in temps or []}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Fire(_Model):
    """FIRE settings (docs/method.md §2.2); ``parameters()`` gives tbotan.md.fire.FireParameters."""

    tolerance: float = Field(1e-12, gt=0)
    max_steps: int = Field(500_000, ge=1)
    dt_init: float = Field(0.002, gt=0)
    dt_max: float = Field(0.02, gt=0)
    alpha_start: float = Field(0.1, gt=0, lt=1)
    f_alpha: float = Field(0.99, gt=0, lt=1)
    f_inc: float = Field(1.1, gt=1)
    f_dec: float = Field(0.5, gt=0, lt=1)
    n_min: int = Field(5, ge=0)

    def parameters(self):
        from ..md.fire import FireParameters

        return FireParameters(**self.model_dump())


class Dynamics(_Model):
    """The dynamics of the measured runs, replicas and tau_alpha alike (tbotan.md.dynamics): ``nve``,
    ``nose-hoover`` (``time_constant``, tau_LJ) or ``langevin`` (``friction`` per tau_LJ, ``zero_sum_noise``:
    momentum-conserving kicks). A bare name (``dynamics: nve``) takes the parameters' defaults; a parameter of
    another kind is refused. Normal form: the kind's parameters filled, the others None."""

    kind: Literal["nve", "nose-hoover", "langevin"]
    friction: float | None = Field(None, gt=0)
    time_constant: float | None = Field(None, gt=0)
    zero_sum_noise: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _name(cls, v):
        return {"kind": v} if isinstance(v, str) else v

    @model_validator(mode="after")
    def _parameters(self):
        own = DYNAMICS_DEFAULTS[self.kind]
        stray = [
            k for k in ("friction", "time_constant", "zero_sum_noise") if k not in own and getattr(self, k) is not None
        ]
        if stray:
            _fail([((k,), f"is not a parameter of {self.kind!r} dynamics") for k in stray])
        for k, v in own.items():
            if getattr(self, k) is None:
                object.__setattr__(self, k, v)
        return self

    def parameters(self) -> dict:
        """The mapping tbotan.md.dynamics takes: the kind and its own parameters."""
        return {"kind": self.kind, **{k: v for k, v in self.model_dump().items() if k != "kind" and v is not None}}

    def describe(self) -> str:
        """One line naming the dynamics and its parameters (the store's ``dynamics`` attribute)."""
        if self.kind == "nve":
            return "NVE velocity Verlet"
        if self.kind == "nose-hoover":
            return f"Nose-Hoover chain NVT, time constant {self.time_constant:g}"
        noise = "zero-sum (momentum-conserving) noise" if self.zero_sum_noise else "independent noise"
        return f"Langevin BAOAB, friction {self.friction:g}, {noise}"


class Splits(_Model):
    """Validation and test shares at training temperatures: an int count or a float fraction in [0, 1)."""

    validation: Union[int, float] = 0.1
    test: Union[int, float] = 0.2

    @field_validator("validation", "test", mode="plain")
    @classmethod
    def _share(cls, v):
        limit = math.inf if isinstance(v, int) else 1
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < limit:
            raise ValueError(f"must be a count (integer >= 0) or a fraction (float in [0, 1)), got {v!r}")
        return v

    def counts(self, n: int) -> tuple[int, int, int]:
        """(train, validation, test) of ``n`` configurations; a fraction f gives floor(f n + 1/2)."""
        val, test = (s if isinstance(s, int) else math.floor(s * n + 0.5) for s in (self.validation, self.test))
        return n - val - test, val, test


class Training(_Model):
    """T-BOTAN training (docs/method.md §5); the variants are the edge features: both, inherent (IS) or thermal only."""

    temperatures: list[float] | None = None  # default: all of the job's temperatures
    epochs: int = Field(2000, ge=1)
    switch_epoch: int = Field(1000, ge=0)  # where w_v, w_c and the global term switch on
    seeds: int = Field(5, ge=1)
    lambda_g: Union[float, list[float]] = 1e-2  # a list is a sweep
    target: Literal["cb", "propensity"] = "cb"  # the node target: C_B (the paper) or the mean absolute displacement
    lambda_node: float = Field(0.5, ge=0)
    lambda_edge: float = Field(0.5, ge=0)
    w_v: float = Field(1.0, ge=0)
    w_c: float = Field(0.5, ge=0)
    lr: float = Field(1e-4, gt=0)
    clip: float = Field(1.0, gt=0)
    variants: list[Literal["both", "inherent", "thermal"]] = Field(default_factory=lambda: ["both"], min_length=1)
    decoder: Literal["shared", "separate"] = "shared"
    hidden: int = Field(64, ge=1)
    steps: int = Field(7, ge=1)
    edge_cutoff: float = Field(2.0, gt=0)
    # the training recipe, which the paper leaves open (docs/training.md measures each choice)
    # outputs in units of the training set's mean and spread: temperature (T only), edge_temperature (E_jk and T),
    # centered (edge_temperature, and C_B shifted by its mean), standard (all three), mobility (standard with C_B's
    # unit negative); docs/training.md measures each
    scaling: Literal["none", "temperature", "edge_temperature", "centered", "standard", "mobility"] = "none"
    init: Literal["torch", "he"] = "torch"  # torch's default Linear init, or He (variance 2 / fan_in)
    pretrain_epochs: int = Field(0, ge=0)  # the first epochs train on one target alone
    # which: the edges (BOTAN's recipe), or the nodes by L_MSE (node), by each species' deviations from its mean
    # (deviation), by the Pearson correlation within each species (pearson), or by the deviations with each species'
    # mean held at the training set's (anchored); tbotan.learn.loss.species_terms
    pretrain_target: Literal["edge", "node", "deviation", "pearson", "anchored"] = "edge"
    schedule: Literal["constant", "cosine"] = "constant"  # learning rate over the epochs
    # the global chain's input mean_v h^m as it is (raw, the paper), or standardised per step and feature with the
    # training graphs' mean and spread, fixed at the switch epoch (an architecture option, docs/training.md)
    global_input: Literal["raw", "standardized"] = "raw"
    # the edge features as they are (raw, the paper), or in units of the training graphs' spread (the thermal
    # distance also shifted by its mean), fixed buffers set before the first epoch (tbotan.learn.model)
    edge_input: Literal["raw", "standardized"] = "raw"
    # the sum of messages into a node as the node MLP reads it: as it is (raw, the paper), or per feature in units of
    # its spread over the training graphs' nodes under the initial network, fixed buffers (tbotan.learn.model)
    message_input: Literal["raw", "standardized"] = "raw"
    # the epoch the global (temperature) term starts counting, if before the switch epoch (default: at the switch,
    # docs/method.md §5); it counts beside the pre-training's one target too
    global_start_epoch: Union[int, None] = Field(None, ge=0)
    global_lr_factor: float = Field(1.0, gt=0)  # the global path's learning rate, in units of lr
    # the learning rate from the switch epoch on, in units of the schedule's: L_Var and L_Corr then reshape a trunk
    # that has learned C_B (docs/training.md measures what the full step does to the node signal)
    switch_lr_factor: float = Field(1.0, gt=0)
    # w_v and w_c rise linearly from 0 to their values over this many epochs from the switch epoch (0: a step, the
    # paper's); the loss the run ends on is the paper's, the ramp only eases the trunk into it
    switch_ramp_epochs: int = Field(0, ge=0)
    # the trunk's (encoders, edge and node MLPs) step from the switch epoch on, in units of the others' (0 freezes
    # it: L_Var, L_Corr, the edge and global terms then train only the decoders and the global path)
    switch_trunk_lr_factor: float = Field(1.0, ge=0)
    # when pre-training ends, the node and edge decoders' last Linear layers fitted by least squares to the
    # training graphs' targets (fit) or kept as they are (keep): after a pre-training blind to the species' means
    # (deviation, pearson) the readout starts L_MSE and L_edge at their optimum instead of sending a large gradient
    # into the trunk (docs/training.md, "The plateau"); needs separate decoders
    pretrain_readout: Literal["keep", "fit"] = "keep"
    warmup_epochs: int = Field(0, ge=0)  # linear warm-up of the learning rate
    compile: Literal["auto", "on", "off"] = "off"  # torch.compile the model (auto: fall back to eager on failure)
    # recompute each message-passing step's activations in the backward pass instead of keeping them: the same
    # gradients, a fraction of the memory, one more forward pass of time (large N: docs/training.md)
    checkpoint: bool = False
    # the network's forward pass in bfloat16 (torch.autocast: its matrix products in bf16; the sum of messages, the
    # outputs and the loss stay in float32); a CPU with AVX512-BF16 or AMX, or a GPU, runs it faster; auto: bfloat16
    # where the hardware has it, else float32
    precision: Literal["auto", "float32", "bfloat16"] = "float32"

    @field_validator("temperatures", mode="plain")
    @classmethod
    def _temps(cls, v):
        return None if v is None else _temperature_list(v, sort=False)  # sorted once checked against the job's

    @field_validator("lambda_g", mode="plain")
    @classmethod
    def _lambda_g(cls, v):
        many = isinstance(v, list) and bool(v)
        bad = [
            ((i,) if many else (), f"must be a number >= 0, got {x!r}")
            for i, x in enumerate(v if many else [v])
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not x >= 0
        ]
        if bad:
            _fail(bad)
        return [float(x) for x in v] if many else float(v)

    @property
    def lambda_g_values(self) -> list[float]:
        return self.lambda_g if isinstance(self.lambda_g, list) else [self.lambda_g]


class Source(_Model):
    """Published data to import instead of simulating (docs/method.md §7; ``tbotan.data.importers``): the format and the
    folder of its files; ``validation``: the share of each temperature's train files kept for checkpoint
    selection (a count or a fraction, as in ``splits``); ``times``: time index of the files -> time in units of
    tau_alpha, overriding the format's default table."""

    format: Literal["botan", "glassbench", "bapst"]
    path: str
    validation: Union[int, float] = 0.1
    times: dict[int, float] | None = None

    @field_validator("validation", mode="plain")
    @classmethod
    def _share(cls, v):
        return Splits._share(v)

    @field_validator("times", mode="plain")
    @classmethod
    def _times(cls, v):
        if v is None:
            return None
        if not isinstance(v, dict):
            raise ValueError(f"must be a mapping time index -> time in units of tau_alpha, got {v!r}")
        v = {int(k) if isinstance(k, str) and k.isdigit() else k: x for k, x in v.items()}  # JSON keys are strings
        bad = [
            ((str(k),), f"must map an integer index >= 0 to a positive time, got {k!r}: {x!r}")
            for k, x in v.items()
            if isinstance(k, bool)
            or not isinstance(k, int)
            or k < 0
            or isinstance(x, bool)
            or not isinstance(x, (int, float))
            or not x > 0
        ]
        if bad:
            _fail(bad)
        return {int(k): float(x) for k, x in v.items()}

    @field_serializer("times", when_used="json")
    def _str_keys(self, v):
        return None if v is None else {str(k): x for k, x in v.items()}


class Evaluation(_Model):
    """Evaluation settings (docs/method.md §6); ``slab`` is (low, high) z as fractions of L for the C_B maps."""

    sq_q_max: float = Field(10.0, gt=0)  # S_B(q) up to this |q|
    # every prediction averaged over the 48 axis permutations x reflections of the IS vectors (the augmentation's
    # group, tbotan.learn.inference.forward): the network is not invariant under them, the physics is
    symmetrize: bool = False
    oz_fit_q_max: float = Field(2.0, gt=0)  # Ornstein-Zernike fit below this |q|
    slab: list[float] = Field(default_factory=lambda: [11.1 / 15.06, 11.9 / 15.06], min_length=2, max_length=2)

    @field_validator("slab")
    @classmethod
    def _slab(cls, v):
        if not 0 <= v[0] < v[1] <= 1:
            raise ValueError(f"must be two fractions of L with 0 <= low < high <= 1, got {v}")
        return v


def _temperature_list(v: Any, sort: bool = True) -> list[float]:
    """Unique temperatures in (0, T_MAX] (errors name the index given)."""
    if not isinstance(v, list) or not v:
        raise ValueError(f"must be a non-empty list of temperatures, got {v!r}")
    out, bad = [], []
    for i, x in enumerate(v):
        try:
            T = _T(x)
        except ValueError:
            bad.append(((i,), f"must be a number, got {x!r}"))
            continue
        if not 0 < T <= T_MAX:
            bad.append(((i,), f"must be positive and at most {T_MAX}, got {x}"))
        elif f"{T:.3f}" in {f"{t:.3f}" for t in out}:
            bad.append(((i,), f"{x} repeats an earlier temperature (store groups are named T{{T:.3f}})"))
        out.append(T)
    if bad:
        _fail(bad)
    return sorted(out) if sort else out


def _table_i(T: float) -> float | None:
    return next((tau for t, tau in TABLE_I.items() if abs(t - T) <= 1e-9), None)


class JobSpec(_Model):
    """A validated job spec; field names are the public contract of docs/method.md §8.2."""

    density: float = Field(1.2, gt=0)
    N: int
    temperatures: list[float]
    source: Source | None = None  # import published data instead of simulating (then the files set the counts)
    tau_alpha: Union[Literal["measure"], dict[float, float]] = Field(None, validate_default=True)
    times: list[float] = Field(default_factory=lambda: [1.0], min_length=1)  # units of tau_alpha
    configurations: dict[float, int] = Field(10, validate_default=True)
    replicas: int = Field(32, ge=0)  # >= 2 to simulate; an import takes the files' count (GlassBench: 0)
    dt: float = Field(0.005, gt=0, le=0.01)
    equilibration: float = Field(30.0, gt=0)  # units of tau_alpha, before the first configuration
    decorrelation: float = Field(3.0, gt=0)  # units of tau_alpha between configurations on a chain
    chains: int = Field(1, ge=1)  # configuration c lies on chain c % chains, at position c // chains
    seed: int = Field(0, ge=0)
    fire: Fire = Field(default_factory=Fire)
    store_dtype: Literal["float32", "float64"] = "float32"
    dynamics: Dynamics = Field(default_factory=lambda: Dynamics(kind="nve"))
    training: Training = Field(default_factory=Training, validate_default=True)
    splits: Splits = Field(default_factory=Splits, validate_default=True)
    evaluation: Evaluation = Field(default_factory=Evaluation)

    @field_validator("N")
    @classmethod
    def _box(cls, n, info):
        rho = info.data.get("density", 1.2)
        if n <= 0:
            raise ValueError(f"must be positive, got {n}")
        if (n / rho) ** (1 / 3) <= 2 * CUTOFF_AA:
            raise ValueError(
                f"too small: box L = (N/density)^(1/3) = {(n / rho) ** (1 / 3):.3f} must exceed "
                f"{2 * CUTOFF_AA} (twice the A-A cutoff); need N >= {math.floor((2 * CUTOFF_AA) ** 3 * rho) + 1}"
            )
        return n

    @field_validator("temperatures", mode="plain")
    @classmethod
    def _temps(cls, v):
        return _temperature_list(v)

    @field_validator("tau_alpha", mode="plain")
    @classmethod
    def _tau(cls, v, info):
        if v == "measure":
            return v
        if v is not None and not isinstance(v, dict):
            raise ValueError(f"must be 'measure' or a mapping temperature -> tau_alpha, got {v!r}")
        return _per_T(
            v or {},
            info.data.get("temperatures"),
            False,
            _table_i,
            "no tau_alpha for temperature {T} (not in Table I): give a value or 'measure'",
        )

    @field_validator("replicas")
    @classmethod
    def _replicas(cls, v, info):
        if v < 2 and info.data.get("source") is None:
            raise ValueError(f"must be greater than or equal to 2 (an iso-configurational ensemble), got {v}")
        return v

    @field_validator("times")
    @classmethod
    def _times(cls, v):
        bad = [
            ((i,), f"must be positive and increasing, got {t}")
            for i, t in enumerate(v)
            if not t > (v[i - 1] if i else 0)
        ]
        if bad:
            _fail(bad)
        return v

    @field_validator("configurations", mode="plain")
    @classmethod
    def _configs(cls, v, info):
        return _per_T(v, info.data.get("temperatures"), True, lambda T: None, "no count for temperature {T}")

    @field_validator("training")
    @classmethod
    def _training(cls, tr, info):
        temps = info.data.get("temperatures")
        bad = [
            (("temperatures", i), f"{T} is not in temperatures")
            for i, T in enumerate(tr.temperatures or [])
            if temps is not None and not _known(T, temps)
        ]
        if len(set(tr.variants)) < len(tr.variants):
            bad.append((("variants",), f"repeats a variant: {tr.variants}"))
        if tr.switch_epoch >= tr.epochs:
            bad.append(
                (
                    ("switch_epoch",),
                    f"{tr.switch_epoch} is not before the end ({tr.epochs} epochs): "
                    "w_v, w_c and the global term would never switch on",
                )
            )
        if tr.pretrain_epochs > tr.switch_epoch:
            bad.append(
                (
                    ("pretrain_epochs",),
                    f"{tr.pretrain_epochs} runs past the switch epoch {tr.switch_epoch}: the edge-only "
                    "pre-training must end before the extra terms switch on",
                )
            )
        if tr.pretrain_readout == "fit" and tr.decoder != "separate":
            bad.append((("pretrain_readout",), "fit needs `decoder: separate` (one readout per output)"))
        if tr.pretrain_readout == "fit" and not tr.pretrain_epochs:
            bad.append((("pretrain_readout",), "fit happens when pre-training ends: set pretrain_epochs > 0"))
        if tr.pretrain_epochs and tr.pretrain_target == "edge" and tr.lambda_edge == 0:
            bad.append((("pretrain_epochs",), "pre-trains on the edge targets, but lambda_edge is 0 (no edge term)"))
        if bad:
            _fail(bad)
        return tr.model_copy(update={"temperatures": sorted(tr.temperatures or temps or [])})

    @field_validator("splits")
    @classmethod
    def _splits(cls, s, info):
        configs, tr = info.data.get("configurations"), info.data.get("training")
        bad = [
            ((), f"at T = {T}: validation {val} + test {test} of {configs[T]} configurations leave no training one")
            for T in (tr.temperatures if configs and tr else [])
            if T in configs
            for n, val, test in [s.counts(configs[T])]
            if n < 1
        ]
        if bad:
            _fail(bad)
        return s

    @field_serializer("tau_alpha", "configurations", when_used="json")
    def _str_keys(self, v):
        return v if isinstance(v, str) else {str(k): x for k, x in v.items()}

    # --- helpers used by the pipeline ---
    def _key(self, T: float) -> float:
        for t in self.temperatures:
            if abs(t - round(float(T), 6)) <= 1e-9:
                return t
        raise KeyError(f"temperature {T} is not in this spec's temperatures {self.temperatures}")

    @property
    def measure_tau(self) -> bool:
        return self.tau_alpha == "measure"

    def tau_for(self, T: float) -> float | None:
        """The given tau_alpha at T, or None when it is to be measured."""
        return None if self.measure_tau else self.tau_alpha[self._key(T)]

    def configurations_for(self, T: float) -> int:
        return self.configurations[self._key(T)]

    @property
    def training_temperatures(self) -> list[float]:
        return list(self.training.temperatures)

    def split_for(self, T: float) -> np.ndarray:
        """int8 array (0 train, 1 validation, 2 test) over the configurations at T; see the module doc."""
        n = self.configurations_for(T)
        split = np.full(n, 2, dtype=np.int8)
        if not _known(self._key(T), self.training.temperatures):
            return split
        _, n_val, n_test = self.splits.counts(n)
        split[:] = 0
        split[np.floor((np.arange(n_test) + 0.5) * n / max(n_test, 1)).astype(int)] = 2
        rest = np.flatnonzero(split == 0)
        split[rest[np.floor((np.arange(n_val) + 0.5) * len(rest) / max(n_val, 1)).astype(int)]] = 1
        return split

    def to_json(self) -> str:
        """Canonical JSON (sorted keys): two specs are equal iff these strings are."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True)

    def data_json(self) -> str:
        """Canonical JSON of only the fields that determine the data: DATA_FIELDS, or for imported data
        IMPORT_FIELDS and the source without its path (the files, not the spec, set the counts and times; a
        store may be imported from a copy of the data in another folder)."""
        if self.source is None:
            return json.dumps(self.model_dump(mode="json", include=set(DATA_FIELDS)), sort_keys=True)
        out = self.model_dump(mode="json", include=set(IMPORT_FIELDS))
        out["source"] = self.source.model_dump(mode="json", exclude={"path"})
        return json.dumps(out, sort_keys=True)


# --- YAML and error reporting ---
class _Loader(yaml.SafeLoader):
    """SafeLoader that reads 1e-12 as a float (YAML 1.2) and refuses duplicate keys."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float)):
                if key in seen:
                    raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:\d[\d_]*(?:\.\d*)?|\.\d+)[eE][-+]?\d+$"), list("-+0123456789.")
)


def _reason(err: dict) -> str:
    if err["type"] == "extra_forbidden":
        model = JobSpec
        for part in err["loc"][:-1]:
            field = model.model_fields.get(part) if isinstance(part, str) else None
            model = field.annotation if field else None
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                return "unknown field"
        close = difflib.get_close_matches(str(err["loc"][-1]), model.model_fields, n=1)
        return "unknown field" + (
            f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(model.model_fields)})"
        )
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "missing":
        return "required field is missing"
    if err["type"] not in ("value_error", "spec") and not isinstance(err.get("input"), (dict, list)):
        msg += f" (got {err.get('input')!r})"
    return msg


def parse_spec(data: Any, source: str = "job spec") -> JobSpec:
    """Validate a mapping (e.g. parsed YAML) into a JobSpec, or raise one SpecError listing every problem."""
    if not isinstance(data, dict):
        raise SpecError([("(top level)", f"must be a mapping of field: value, got {type(data).__name__}")], source)
    try:
        return JobSpec.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            subs = err["ctx"]["problems"] if err["type"] == "spec" else [((), _reason(err))]
            problems += [(".".join(map(str, (*err["loc"], *sub))) or "(top level)", r) for sub, r in subs]
        raise SpecError(problems, source) from None


def load_spec(path: str | Path) -> JobSpec:
    """Read and validate a YAML job spec; every problem is reported in one SpecError."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SpecError([("(file)", f"cannot read {path}: {e.strerror or e}")], str(path)) from None
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        at = [
            (m.line + 1, m.column + 1)
            for m in (getattr(e, "problem_mark", None), getattr(e, "context_mark", None))
            if m
        ]
        problem = getattr(e, "problem", None) or str(e)
        if getattr(e, "context", None):
            problem += f" ({e.context}, line {at[-1][0]})"
        where = f"line {at[0][0]}, column {at[0][1]}" if at else "(YAML)"
        raise SpecError([(where, f"malformed YAML: {problem}")], str(path)) from None
    return parse_spec(data, str(path))
