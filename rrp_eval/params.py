"""Strict, validated parameters: ``params/programme.yaml`` and ``params/trusts/<code>.yaml``.

Unknown keys, wrong types and impossible values fail before any computation, with a message
naming the file, the line, the key and what is allowed (SPEC §3).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from rrp_eval.digest import digest
from rrp_eval.schema import (
    BALANCING_MEASURES,
    DERIVED_MEASURES,
    KEY_PATTERN,
    KEY_RULE,
    MEASURE_LABELS,
    STANDARD_MEASURES,
)

PROGRAMME_FILE = "programme.yaml"
TRUSTS_FOLDER = "trusts"


class ParameterError(ValueError):
    """Parameters that cannot be used; the message names the file, key and what is allowed."""


def _check_harmonics(value: Any) -> Any:
    if value is None or value == "auto":
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 6:
        return value
    raise ValueError("should be 'auto' or a whole number of sine/cosine pairs from 0 to 6")


Harmonics = Annotated[Any, BeforeValidator(_check_harmonics)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class MeasureParams(_Strict):
    """How a measure is read: its improvement direction, label and role."""

    direction: Literal["decrease", "increase", "neutral"] = "decrease"
    label: str | None = None
    balancing: bool = False
    #: a measure the programme should not change, read as a negative control in the trust
    #: reports (balancing measures are read so too)
    negative_control: bool = False


class ModelParams(_Strict):
    """Interrupted time-series model options (see ``rrp_eval.models.its.fit_its``)."""

    family: Literal["quasipoisson", "auto", "poisson", "negbin"] = "quasipoisson"
    harmonics: Harmonics = "auto"
    cov_type: Literal["arma", "ar1", "nonrobust", "hac"] = "arma"
    maxlags: int | None = Field(None, ge=0, le=24)
    trend: Literal["linear", "quadratic"] = "linear"
    baseline_months: int | None = Field(None, ge=3, le=240)
    robust: bool = False


class DisclosureParams(_Strict):
    """Small-number suppression for anything shared (DOMAIN.md; NHS Digital's MHSDS rule)."""

    suppress_below: int = Field(5, ge=1, le=100, description="counts 1..n-1 shown as *")
    round_to: int = Field(5, ge=1, le=100, description="other counts rounded to this")
    min_rate_count: int = Field(5, ge=0, description="rates need a count of at least this")
    min_rate_bed_days: int = Field(100, ge=0, description="and at least this many bed days")
    rate_decimals: int = Field(0, ge=0, le=3, description="decimals of ward-month rates")

    @model_validator(mode="before")
    @classmethod
    def _no_other_trusts(cls, values: Any) -> Any:
        """``other_trusts`` was accepted and never read (issue 14): say so rather than ignore it."""
        if isinstance(values, dict) and "other_trusts" in values:
            raise ValueError(
                "other_trusts is not a setting (it was accepted and never read, and is removed):"
                " a trust's report shows only that trust, and the programme-level pages and"
                " tables name the programme's trusts for its members; delete the line"
            )
        return values


class PlausibilityParams(_Strict):
    """Thresholds of the data-quality warnings (docs/methods.md, "Data validation")."""

    max_rate_per_1000_obd: float = Field(1000.0, gt=0)
    bed_day_jump_ratio: float = Field(2.0, gt=1)
    count_jump_ratio: float = Field(10.0, gt=1)
    count_jump_min: int = Field(30, ge=1)
    late_onset_months: int = Field(3, ge=1)


class ModelOverride(_Strict):
    """Per-trust changes to the model options; keys left out keep the programme's value."""

    family: Literal["quasipoisson", "auto", "poisson", "negbin"] | None = None
    harmonics: Harmonics = None
    cov_type: Literal["arma", "ar1", "nonrobust", "hac"] | None = None
    maxlags: int | None = Field(None, ge=0, le=24)
    trend: Literal["linear", "quadratic"] | None = None
    baseline_months: int | None = Field(None, ge=3, le=240)
    robust: bool | None = None


class TrustParams(_Strict):
    """``params/trusts/<trust_code>.yaml``: overrides for one trust."""

    phase_in_months: int | None = Field(None, ge=0, le=24)
    model: ModelOverride = ModelOverride()
    # a YAML list; these wards are left out of every analysis (trust and programme)
    exclude_wards: tuple[str, ...] = Field((), strict=False)
    note: str | None = None


#: the programme_effects methods a primary analysis may name
POOLING_METHODS = (
    "random_effects_reml_hk",
    "random_effects_pm_hk",
    "random_effects_dl_hk",
    "random_effects_reml",
    "random_effects_pm",
    "random_effects_dl",
    "controlled",
    "controlled_cs",
    "gee_pooled",
)


class PrimaryParams(_Strict):
    """The pre-specified answer: one measure, one effect, one method. Every other result is
    secondary (the other effects and methods of the same measure, and the other restrictive
    practice measures) or exploratory (balancing measures, breakdowns, SPC signals)."""

    measure: str = "restrictive_practice"
    effect: Literal["rr_h", "level_rr", "slope_rr"] = "rr_h"
    method: Literal[POOLING_METHODS] = "random_effects_reml_hk"  # type: ignore[valid-type]


class ProgrammeParams(_Strict):
    """``params/programme.yaml``: the programme's parameters (all keys have defaults)."""

    programme: str = "Restrictive practice programme"
    data: str | None = Field(None, description="data path relative to this file; none = demo")
    measures: dict[str, MeasureParams] = {}
    phase_in_months: int = Field(0, ge=0, le=24)
    horizon_months: int = Field(12, ge=1, le=60)
    comparison_wards: bool = True
    primary: PrimaryParams = PrimaryParams()
    model: ModelParams = ModelParams()
    disclosure: DisclosureParams = DisclosureParams()
    plausibility: PlausibilityParams = PlausibilityParams()
    # filled by load_params, not by the file
    source: str | None = Field(None, exclude=True)
    trusts: dict[str, TrustParams] = Field(default_factory=dict, exclude=True)

    @model_validator(mode="after")
    def _phase_in_within_horizon(self) -> ProgrammeParams:
        """``rr_h`` is the level change carried forward by the slope: with a phase-in longer
        than the horizon it would be extrapolated backwards into months left out of the fit."""
        if self.phase_in_months > self.horizon_months:
            raise ValueError(
                f"phase_in_months ({self.phase_in_months}) must not exceed horizon_months "
                f"({self.horizon_months}): the effect at the horizon would be extrapolated back "
                "into the phase-in months the model leaves out; raise horizon_months or shorten "
                "the phase-in"
            )
        return self

    @property
    def data_path(self) -> Path | None:
        """The data folder or workbook ``data`` names, relative to the parameters file; None
        when it names none (:func:`rrp_eval.data.synthetic.data_location` then gives the
        demonstration programme). Reading it does no I/O."""
        if self.data is None:
            return None
        path = Path(self.data).expanduser()
        if not path.is_absolute() and self.source is not None:
            path = Path(self.source).parent / path
        return path

    @property
    def extra_measures(self) -> tuple[str, ...]:
        """Measures named in the parameters beyond the standard ones (their own columns)."""
        known = set(STANDARD_MEASURES) | set(BALANCING_MEASURES) | set(DERIVED_MEASURES)
        return tuple(m for m in self.measures if m not in known)

    def measure(self, name: str) -> MeasureParams:
        """Parameters of a measure (the defaults for a standard measure not listed)."""
        default = MeasureParams(
            label=MEASURE_LABELS.get(name, name.replace("_", " ").capitalize()),
            balancing=name in BALANCING_MEASURES,
        )
        given = self.measures.get(name)
        if given is None:
            return default
        return given if given.label else given.model_copy(update={"label": default.label})

    def analysed_measures(self, columns: list[str] | tuple[str, ...]) -> tuple[str, ...]:
        """Standard measures present in the data, the derived ones they allow, and extras."""
        present = [m for m in STANDARD_MEASURES if m in columns]
        derived = [d for d, parts in DERIVED_MEASURES.items() if all(p in columns for p in parts)]
        balancing = [m for m in BALANCING_MEASURES if m in columns]
        extra = [m for m in self.extra_measures if m in columns]
        return tuple(present + derived + balancing + extra)

    @property
    def excluded_wards(self) -> dict[str, tuple[str, ...]]:
        """``exclude_wards`` of every trust that sets it."""
        return {t: p.exclude_wards for t, p in self.trusts.items() if p.exclude_wards}

    def digest(self, trust_code: str | None = None) -> str:
        """SHA-256 of the parameters that shape an evaluation: the programme's, and the trust's
        own when ``trust_code`` is given (every trust's when it is not)."""
        own = (
            self.for_trust(trust_code).model_dump(mode="json")
            if trust_code is not None
            else {t: self.for_trust(t).model_dump(mode="json") for t in sorted(self.trusts)}
        )
        return digest(self.model_dump(mode="json"), own)

    def for_trust(self, trust_code: str) -> EffectiveTrustParams:
        """The programme's parameters with ``trusts/<trust_code>.yaml`` applied."""
        own = self.trusts.get(trust_code, TrustParams())
        changes = own.model.model_dump(exclude_none=True)
        return EffectiveTrustParams(
            trust_code=trust_code,
            phase_in_months=(
                own.phase_in_months if own.phase_in_months is not None else self.phase_in_months
            ),
            horizon_months=self.horizon_months,
            model=self.model.model_copy(update=changes),
            exclude_wards=own.exclude_wards,
        )


class EffectiveTrustParams(_Strict):
    """What applies to one trust after its overrides."""

    trust_code: str
    phase_in_months: int
    horizon_months: int
    model: ModelParams
    exclude_wards: tuple[str, ...]


def _key_line(text: str, loc: tuple[Any, ...]) -> int | None:
    """Line (1-based) of the key at ``loc`` in a YAML mapping, or of its deepest parent."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for key in loc:
        if not isinstance(node, yaml.MappingNode):
            break
        for k, v in node.value:
            if k.value == str(key):
                line, node = k.start_mark.line + 1, v
                break
        else:
            break
    return line


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys that the mapping at ``loc`` accepts."""
    keys = list(loc)
    while keys:
        key = str(keys.pop(0))
        if model is ProgrammeParams and key == "measures":
            if not keys:
                return ["any measure name"]
            keys.pop(0)
            model = MeasureParams
            continue
        field = model.model_fields.get(key)
        if field is None:  # inside a mapping the model does not describe
            break
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
    return [k for k, f in model.model_fields.items() if not f.exclude]


def _format_errors(
    exc: ValidationError, file: str, text: str, model: type[BaseModel]
) -> ParameterError:
    lines = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
        if not loc:  # a check across keys names the key it is about first
            first = err["msg"].removeprefix("Value error, ").split(" ", 1)[0]
            loc = (first,) if first in model.model_fields else ()
        key = ".".join(str(p) for p in loc) or "(top level)"
        line = _key_line(text, loc)
        where = f"{file}:{line}" if line else file
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, loc[:-1])
            msg = f"unknown key {key!r}; allowed here: {', '.join(allowed)}"
        else:
            got = err.get("input")
            said = err["msg"].replace("Input should", "should").removeprefix("Value error, ")
            msg = f"key {key!r}: {said}"
            if err["type"] != "missing" and not isinstance(got, dict):
                msg += f" (got {_shown(got)})"
        lines.append(f"{where}: {msg}")
    return ParameterError("\n".join(dict.fromkeys(lines)))


class _StrictLoader(yaml.SafeLoader):
    """YAML without aliases: parameters never need ``&anchor``/``*alias``, and nested aliases
    can expand a few lines into billions of values (a "billion laughs" file)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None,
                None,
                f"aliases (*{event.anchor}) are not allowed in parameters; write the value out",
                event.start_mark,
            )
        return super().compose_node(parent, index)


def _shown(value: Any, most: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= most else f"{text[: most - 4]}... ({len(text):,} characters)"


def _read_yaml(path: Path) -> tuple[dict[str, Any], str]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ParameterError(f"{path}: cannot be read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ParameterError(f"{path}: not UTF-8 text") from exc
    try:
        content = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader, without aliases
    except RecursionError as exc:
        raise ParameterError(f"{path}: not valid YAML: nested too deeply") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ParameterError(f"{where}: not valid YAML: {problem}") from exc
    if content is None:
        content = {}
    if not isinstance(content, dict):
        raise ParameterError(
            f"{path}: must be a mapping of keys to values, not a {type(content).__name__}"
        )
    return content, text


#: keys a programme.yaml may not set: load_params fills them (from the folder)
_FILLED_BY_LOADER = ("source", "trusts")
#: column names of the data that a measure may not take
_RESERVED_COLUMNS = ("trust_code", "ward_id", "month", "occupied_bed_days")


def _validate(model: type[BaseModel], path: Path) -> Any:
    content, text = _read_yaml(path)
    if model is ProgrammeParams:
        for key in _FILLED_BY_LOADER:
            if key in content:
                line = _key_line(text, (key,))
                allowed = _allowed_keys(model, ())
                hint = " (per-trust overrides go in trusts/<trust_code>.yaml)" * (key == "trusts")
                raise ParameterError(
                    f"{path}:{line}: unknown key {key!r}{hint}; allowed here: {', '.join(allowed)}"
                )
    try:
        return model.model_validate(content)
    except ValidationError as exc:
        raise _format_errors(exc, str(path), text, model) from None


def load_params(params_dir: str | Path | None = None) -> ProgrammeParams:
    """Read and validate the programme's parameters and every per-trust override.

    Parameters
    ----------
    params_dir : str or pathlib.Path, optional
        Folder holding ``programme.yaml`` and optionally ``trusts/<trust_code>.yaml``. None gives
        the defaults (the demonstration programme).

    Returns
    -------
    ProgrammeParams

    Raises
    ------
    ParameterError
        Naming the file, line, key and what is allowed, for unknown keys, wrong types,
        impossible values, unreadable files, or a trust file whose name is not a safe code.
    """
    if params_dir is None:
        return ProgrammeParams()
    folder = Path(params_dir).resolve()
    if not folder.is_dir():
        raise ParameterError(f"{folder}: no such parameters folder")
    programme_file = folder / PROGRAMME_FILE
    if not programme_file.is_file():
        raise ParameterError(
            f"{programme_file}: missing; the parameters folder needs a {PROGRAMME_FILE}"
        )
    params = _validate(ProgrammeParams, programme_file)
    for name in params.measures:
        if not KEY_PATTERN.match(name):
            raise ParameterError(f"{programme_file}: measure name {name!r} must use {KEY_RULE}")
        if name in _RESERVED_COLUMNS or name.endswith("_status"):
            line = _key_line(programme_file.read_text("utf-8-sig"), ("measures", name))
            raise ParameterError(
                f"{programme_file}:{line}: measure name {name!r} is a column of the data, not a "
                "measure; measures are count columns of ward_month"
            )
    trusts = {}
    trust_folder = folder / TRUSTS_FOLDER
    if trust_folder.is_dir():
        for file in sorted(trust_folder.iterdir()):
            if file.suffix not in (".yaml", ".yml"):
                continue
            if not KEY_PATTERN.match(file.stem):
                raise ParameterError(f"{file}: the file name must be a trust code using {KEY_RULE}")
            trusts[file.stem] = _validate(TrustParams, file)
            own = trusts[file.stem].phase_in_months
            if own is not None and own > params.horizon_months:
                line = _key_line(file.read_text("utf-8-sig"), ("phase_in_months",))
                raise ParameterError(
                    f"{file}:{line}: key 'phase_in_months': {own} must not exceed the programme's "
                    f"horizon_months ({params.horizon_months}) in {programme_file.name}: the "
                    "effect at the horizon would be extrapolated back into the phase-in months"
                )
            for ward in trusts[file.stem].exclude_wards:
                if not KEY_PATTERN.match(ward):
                    raise ParameterError(f"{file}: exclude_wards: {ward!r} must use {KEY_RULE}")
    return params.model_copy(update={"source": str(programme_file), "trusts": trusts})
