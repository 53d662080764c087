"""Plan a run: read and validate the inputs, choose the notebooks to execute, and hash what each
output depends on (the digests that let the next run reuse it).

Nothing here executes a notebook or writes a file.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rrp_eval.data.load import load_raw
from rrp_eval.data.problems import ValidationReport
from rrp_eval.data.synthetic import data_location
from rrp_eval.data.validate import ProgrammeData, validate_programme
from rrp_eval.digest import digest, frame_digest, package_digest
from rrp_eval.disclosure import DisclosureRule
from rrp_eval.params import PROGRAMME_FILE, TRUSTS_FOLDER, ProgrammeParams, load_params
from rrp_eval.prepare import check_trust_files, with_derived_measures, without_excluded_wards
from rrp_eval.report.manifest import sha256_file

DATA_QUALITY, TRUST, PROGRAMME = "10_data_quality", "20_trust_evaluation", "30_programme_evaluation"
CONTEXT = "40_provider_context"  # the programme page when no ward has a start month
INTERNAL_SUFFIX = "-internal"
INTERNAL_STAMP = "INTERNAL: NOT FOR SHARING (small numbers are not suppressed)"


def _notebooks_folder() -> Path:
    """The notebooks: shipped in the package (a wheel install), else at the top of the source
    checkout (where evaluators open them; an editable install)."""
    package = Path(__file__).resolve().parents[1]
    shipped = package / "notebooks"
    if (shipped / f"{TRUST}.ipynb").is_file():
        return shipped
    return package.parent / "notebooks"


NOTEBOOKS = _notebooks_folder()


class UnusableInput(ValueError):
    """Input data or parameters that cannot be used: nothing is written (exit 2)."""

    def __init__(self, message: str, report: ValidationReport | None = None):
        super().__init__(message)
        self.report = report


def inside(folder: Path, relative: str) -> Path:
    """``folder / relative``, refusing any path that would leave ``folder`` (a code such as
    ``../x`` is already refused by validation; this is the second lock)."""
    target = (folder / relative).resolve()
    if not target.is_relative_to(folder.resolve()):
        raise UnusableInput(f"{relative!r} would write outside the output folder")
    return target


@dataclass(frozen=True)
class Task:
    """One notebook to execute and render."""

    stage: str
    name: str
    html: str
    title: str
    parameters: dict[str, Any]

    @property
    def files(self) -> list[str]:
        """The task's outputs, relative to the output folder."""
        return [self.html, f"notebooks/{self.stage}_{self.name}.ipynb"]


@dataclass(frozen=True)
class RunOptions:
    """How to run (none of it changes what the reports say)."""

    jobs: int | None = None
    force: bool = False
    timeout: float | None = None
    progress: bool = False
    scheduler: str | None = None
    kernels: str = "warm"
    #: the run to compare with in "since the last run" (default: the folder being replaced)
    since: Path | None = None

    def __post_init__(self) -> None:
        if self.kernels not in ("warm", "cold"):
            raise UnusableInput(f"--kernels {self.kernels}: use warm or cold")
        if self.timeout is not None and not (math.isfinite(self.timeout) and self.timeout > 0):
            raise UnusableInput(f"--timeout {self.timeout}: must be a positive number of seconds")


@dataclass(frozen=True)
class Inputs:
    """The run's validated inputs."""

    params: ProgrammeParams
    programme: ProgrammeData  # validated, excluded wards dropped, derived measures added
    report: ValidationReport
    data_path: Path
    demo: bool  # no data named anywhere: the bundled demonstration programme

    @property
    def files(self) -> dict[str, Path]:
        """Every input file by its name in the manifest."""
        inputs = {f"data/{p.name}": p for p in self.programme.files}
        if self.params.source:
            source = Path(self.params.source)
            inputs[f"params/{PROGRAMME_FILE}"] = source
            trusts = source.parent / TRUSTS_FOLDER
            if trusts.is_dir():
                for p in sorted(trusts.glob("*.y*ml")):
                    inputs[f"params/{TRUSTS_FOLDER}/{p.name}"] = p
        return inputs


def load_inputs(
    data: str | Path | None, params_dir: str | Path | None, trusts: list[str] | None
) -> Inputs:
    """Read and validate the parameters and the data; raises ``UnusableInput`` (nothing is
    written) for structural errors, bad parameters or unknown ``trusts``."""
    params = load_params(params_dir)
    data_path = data_location(data, params)
    raw = load_raw(data_path)
    programme, report = validate_programme(raw, params)
    if programme is None:
        raise UnusableInput(f"{data_path}: the data cannot be used ({report.summary()})", report)
    try:
        check_trust_files(programme, params.trusts)
        programme = without_excluded_wards(programme, params.excluded_wards)
    except ValueError as exc:
        raise UnusableInput(str(exc)) from exc
    programme = with_derived_measures(programme)
    unknown = [t for t in trusts or [] if t not in programme.trusts]
    if unknown:
        raise UnusableInput(
            f"--trusts: {', '.join(unknown)} not in the data; trusts are "
            f"{', '.join(programme.trusts)}"
        )
    return Inputs(params, programme, report, data_path, demo=not data and params.data is None)


def output_folder(out: str | Path | None, default_name: str, internal: bool) -> Path:
    """The run's output folder: ``out`` or ``outputs/<default_name>``; an internal run's
    folder name ends in ``-internal`` (added when missing), so that internal reports never
    land where shared ones are expected."""
    folder = Path(out) if out else Path("outputs") / default_name
    if internal and not folder.name.endswith(INTERNAL_SUFFIX):
        folder = folder.with_name(folder.name + INTERNAL_SUFFIX)
    return folder


@dataclass(frozen=True)
class RunPlan:
    """What a run executes and what every output depends on."""

    inputs: Inputs
    out_dir: Path
    requested: list[str] | None  # --trusts, or None for every trust
    selected: list[str]
    rule: DisclosureRule
    notebooks: Path
    options: RunOptions
    tasks: list[Task]
    #: trusts that failed validation (with the message the index and tables show)
    failed_trusts: dict[str, str]
    digests: dict[str, str] = field(repr=False)
    tables_digest: str = field(repr=False)

    @property
    def params(self) -> ProgrammeParams:
        return self.inputs.params

    @property
    def internal(self) -> bool:
        return self.rule.internal

    @property
    def ok_trusts(self) -> list[str]:
        return [t for t in self.selected if t not in self.failed_trusts]

    @property
    def analysed(self) -> ProgrammeData:
        """The programme-level fits never see the rows of a trust that failed validation."""
        return self.inputs.programme.without_trusts(self.inputs.report.failed_trusts)

    @property
    def page(self) -> dict[str, Any]:
        """What every rendered page shows in its banner."""
        return {
            "programme": self.params.programme,
            "disclosure": self.rule.statement,
            "internal": self.internal,
        }

    @property
    def reproduce(self) -> str:
        """The command line that reproduces this run (shell-quoted)."""
        args = ["rrp-eval", "run", "--data", str(self.inputs.data_path.resolve())]
        args += ["--out", str(self.out_dir)]
        if self.params.source:
            args += ["--params", str(Path(self.params.source).parent.resolve())]
        if self.requested:
            args += ["--trusts", ",".join(self.requested)]
        if self.internal:
            args.append("--internal")
        return shlex.join(args)


def plan_run(
    inputs: Inputs,
    out_dir: Path,
    requested: list[str] | None,
    internal: bool,
    notebooks: Path,
    options: RunOptions,
) -> RunPlan:
    """The tasks of a run and their digests."""
    params, programme = inputs.params, inputs.programme
    selected = list(requested or programme.trusts)
    failed = inputs.report.failed_trusts
    # a whole run also fails the trusts that have rows but are not in wards.csv
    reported = selected if requested else [*selected, *(t for t in failed if t not in selected)]
    failed_trusts = {
        t: f"data errors: {failed[t][0] if internal else failed[t][0].located()}"
        + (f" (and {len(failed[t]) - 1} more)" if len(failed[t]) > 1 else "")
        + ("" if internal else "; the data-quality report and rrp-eval validate list them")
        for t in reported
        if t in failed
    }
    rule = DisclosureRule.from_params(params.disclosure, internal=internal)
    common = {
        "params_dir": str(Path(params.source).parent) if params.source else "",
        "data": str(inputs.data_path.resolve()),
        "internal": internal,
    }
    tasks = [Task(DATA_QUALITY, "programme", "data_quality.html", "Data quality", common)]
    names = dict(zip(programme.wards.trust_code, programme.wards.trust_name, strict=False))
    tasks += [
        Task(TRUST, t, f"trusts/{t}.html", f"{names[t]} ({t})", common | {"trust_code": t})
        for t in selected
        if t not in failed_trusts
    ]
    if programme.wards["start_month"].notna().any():
        pooled = common | ({"trusts": selected} if requested else {})
        tasks.append(Task(PROGRAMME, "programme", "programme.html", "Programme evaluation", pooled))
    else:
        tasks.append(Task(CONTEXT, "programme", "programme.html", "Provider-level context", common))
    digests = {t.html: task_digest(t, programme, params, notebooks) for t in tasks}
    tables_digest = digest(
        "tables",
        package_digest(),
        frame_digest(*_frames(programme)),
        _params_json(params),
        [t for t in selected if t not in failed_trusts],
        rule.statement,  # the rule shapes the glance figure and the workbook's titles
        internal,
    )
    return RunPlan(
        inputs,
        out_dir,
        requested,
        selected,
        rule,
        notebooks,
        options,
        tasks,
        failed_trusts,
        digests,
        tables_digest,
    )


def _frames(programme: ProgrammeData) -> tuple[Any, ...]:
    return (programme.wards, programme.ward_month, programme.events)


def _params_json(params: ProgrammeParams) -> Any:
    return {
        "programme": params.model_dump(mode="json"),
        "trusts": {t: params.for_trust(t).model_dump(mode="json") for t in sorted(params.trusts)},
    }


def task_digest(
    task: Task, programme: ProgrammeData, params: ProgrammeParams, notebooks: Path
) -> str:
    """The hash of everything a notebook's output depends on."""
    nb_hash = sha256_file(notebooks / f"{task.stage}.ipynb")
    if task.stage == TRUST:
        code = task.name
        wards, wm, ev = _frames(programme)
        data_hash = frame_digest(
            wards[wards.trust_code == code],
            wm[wm.trust_code == code],
            ev[ev.trust_code == code],
        )
        own = params.for_trust(code).model_dump(mode="json")
    else:
        data_hash = frame_digest(*_frames(programme))
        own = _params_json(params)
        if task.stage == DATA_QUALITY:
            data_hash += digest([str(p) for p in programme.report.problems])
    return digest(
        task.stage,
        task.parameters,
        task.title,
        nb_hash,
        package_digest(),
        params.model_dump(mode="json"),
        own,
        data_hash,
    )
