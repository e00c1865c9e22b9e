"""The schema of `suites/*.yaml`: which cases to sweep, which variants to run on them, and the timing budget.

A suite is validated before anything runs; every error names the file, the key (as a path such as
`sweeps[1].product.dtype[0]`), the bad value and what would be valid, with a did-you-mean for
misspelt names. Layout:

    name: smoke                     # optional, defaults to the file's stem
    description: ...
    variants: [involution.eager, conv.*]   # family.name or family.* ; default for every sweep
    exclude_variants: [involution.compile] # taken out of `variants` (not of a sweep's own list; a sweep may exclude too)
    budget: {case_s: 1.0, warmup_s: 0.2, min_samples: 5, max_samples: 200, rel_iqr: 0.05, timeout_s: 600,
             max_call_s: 2.0}               # max_call_s: optional time guard (see Budget)
    roofline: {copy_mib: 256, matmul_max_n: 2048, time_s: 0.5}
    mem_budget: 60%                 # optional default of `--mem-budget`
    defaults: {dtype: float32, device: cpu, pass: [fwd, fwd+bwd]}   # axes shared by every sweep
    sweeps:
      - name: stages
        variants: [...]             # optional: replaces the suite's list for this sweep
        zip: {C: [64, 128], size: [56, 28]}      # equal-length lists, walked together (or a list of such maps)
        product: {B: [1, 32], stride: [1, 2]}    # cartesian product

Axes (a scalar or a list; a list in `defaults` or `product` is a product axis): B, C, H, W, size (H = W),
K, G or group_channels (G = C / group_channels), stride, dilation, reduction, dtype, device, pass,
level, channels_last, rpb.
"""
from __future__ import annotations

import difflib
import fnmatch
import hashlib
from pathlib import Path
from typing import Any, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from invobench.bench.timing import FLOOR_SAMPLES
from invobench.core import DEVICES, DTYPES, LEVELS, PASSES

#: where `invobench run smoke` looks for smoke.yaml
SUITES_DIR = Path(__file__).resolve().parent.parent.parent / "suites"

INT_AXES = ("B", "C", "H", "W", "size", "K", "G", "group_channels", "stride", "dilation", "reduction")
CHOICE_AXES = {"dtype": tuple(DTYPES), "device": DEVICES, "pass": PASSES, "level": LEVELS}
BOOL_AXES = ("channels_last", "rpb")
AXES = INT_AXES + tuple(CHOICE_AXES) + BOOL_AXES
#: axes every case needs (H and W may come from `size`)
REQUIRED_AXES = ("B", "C")


#: axes with two spellings; a sweep giving either form replaces both forms from `defaults`
_ALTERNATIVE_FORMS = {"G": {"G", "group_channels"}, "size": {"size", "H", "W"}}
_FORM_HELP = {"G": "G = C / group_channels", "size": "size means H = W = size"}


def merge_axes(defaults: dict[str, Any], sweep_axes: dict[str, Any]) -> dict[str, Any]:
    """The sweep's axes over the suite's defaults; a sweep's G replaces a default group_channels (and size ↔ H/W)."""
    merged = dict(defaults)
    for forms in _ALTERNATIVE_FORMS.values():
        if forms & set(sweep_axes):
            for key in forms:
                merged.pop(key, None)
    merged.update(sweep_axes)
    return merged


class SuiteError(ValueError):
    """An invalid suite; the message names the file, the key path, the value and what is valid."""


def did_you_mean(word: str, candidates: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(str(word), list(candidates), n=1, cutoff=0.6)
    if not close:  # case-insensitive second chance: "b" -> "B", "Dtype" -> "dtype"
        lowered = {c.lower(): c for c in candidates}
        if str(word).lower() in lowered:
            close = [lowered[str(word).lower()]]
    return f" Did you mean {close[0]!r}?" if close else ""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Budget(_Strict):
    """How long to measure each variant of a case (seconds are wall-clock)."""

    warmup_s: float = Field(0.2, ge=0, description="warm-up time after the first call (which may compile)")
    case_s: float = Field(1.0, gt=0, description="sampling time per variant per case before stopping unconverged")
    min_samples: int = Field(5, ge=FLOOR_SAMPLES, description="samples every variant gets: neither the IQR/median test nor the "
                             "time budget stops sampling before them (compare judges a case from 5 a side)")
    max_samples: int = Field(200, ge=FLOOR_SAMPLES)
    rel_iqr: float = Field(0.05, gt=0, description="stop once IQR / median is at most this")
    max_call_s: Optional[float] = Field(None, gt=0, description="time guard: skip a variant whose second call (the first "
                                        "may compile) takes longer, and its later passes of the same case")
    timeout_s: float = Field(900.0, gt=0, description="a worker making no progress (no call finishing) this long is killed: timeout")
    l2_flush: bool = Field(True, description="CUDA: overwrite a buffer larger than L2 before every timed call")
    cuda_graphs: bool = Field(False, description="CUDA: time replays of a captured CUDA graph of the call")

    @model_validator(mode="after")
    def _samples_range(self) -> "Budget":
        if self.min_samples > self.max_samples:
            raise ValueError(f"min_samples={self.min_samples} is greater than max_samples={self.max_samples}; "
                             "every variant gets at least min_samples and at most max_samples samples")
        return self


class RooflineConfig(_Strict):
    copy_mib: int = Field(256, ge=1, description="size of the copied buffer, MiB (well above the last-level cache)")
    matmul_max_n: int = Field(4096, ge=64, description="largest square matmul tried for the FLOP/s peak")
    time_s: float = Field(0.5, gt=0, description="sampling time of each of the two measurements")


AxisValue = Union[int, float, str, bool, list]


class Sweep(_Strict):
    name: Optional[str] = None
    variants: Optional[list[str]] = None
    exclude_variants: list[str] = Field(default_factory=list)
    product: dict[str, AxisValue] = Field(default_factory=dict)
    zip: Union[dict[str, list], list[dict[str, list]]] = Field(default_factory=dict)


class Suite(_Strict):
    name: Optional[str] = None

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and (not value or not all(ch.isalnum() or ch in "-_." for ch in value) or value[0] == "."):
            raise ValueError(f"{value!r} is not a plain name: use letters, digits, '-', '_' and '.' (it names the "
                             "results file, so it may not hold a path)")
        return value
    description: str = ""
    variants: list[str] = Field(default_factory=list)
    exclude_variants: list[str] = Field(default_factory=list, description="taken out of `variants` (patterns allowed); "
                                        "sweeps that give their own list are not affected")
    budget: Budget = Field(default_factory=Budget)
    roofline: RooflineConfig = Field(default_factory=RooflineConfig)
    mem_budget: Optional[Union[str, float, int]] = None
    defaults: dict[str, AxisValue] = Field(default_factory=dict)
    sweeps: list[Sweep] = Field(min_length=1)


class LoadedSuite(BaseModel):
    """A validated suite plus where it came from (hash of the file's bytes, for `--resume`)."""

    suite: Suite
    name: str
    path: Optional[str]
    sha256: str

    def config(self) -> dict[str, Any]:
        return self.suite.model_dump(mode="json")


def resolve_suite_path(name_or_path: str) -> Path:
    """`smoke` -> suites/smoke.yaml; an existing path is used as is."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists() or "/" in name_or_path:
        if not p.exists():
            raise SuiteError(f"suite file {name_or_path} does not exist")
        return p
    # the checkout's suites/, then ./suites (an installed package has no checkout next to it)
    dirs = list(dict.fromkeys([SUITES_DIR, Path.cwd() / "suites"]))
    for directory in dirs:
        candidate = directory / f"{name_or_path}.yaml"
        if candidate.exists():
            return candidate
    known = sorted({f.stem for d in dirs if d.is_dir() for f in d.glob("*.yaml")})
    raise SuiteError(f"unknown suite {name_or_path!r}.{did_you_mean(name_or_path, known)} "
                     f"Known suites in {', '.join(str(d) for d in dirs if d.is_dir()) or 'suites/'}: "
                     f"{', '.join(known) or '(none)'}; or pass a path to a .yaml file")


def load_suite(name_or_path: str, known_variants: Optional[list[str]] = None) -> LoadedSuite:
    """Read, parse and validate a suite (by name or path). Raises SuiteError naming file and key."""
    path = resolve_suite_path(name_or_path)
    if path.is_dir():
        raise SuiteError(f"suite {name_or_path}: {path} is a directory; give a suite file (suites/*.yaml) or a suite name")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SuiteError(f"suite file {path}: cannot read it: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SuiteError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                         "save the suite as UTF-8") from None
    return parse_suite(text, source=str(path), stem=path.stem, known_variants=known_variants,
                       sha256=hashlib.sha256(raw).hexdigest())


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last one silently)."""


def _mapping_without_duplicates(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice in one mapping (first at line {seen[key] + 1}); "
                            "give each key once", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def parse_suite(text: str, source: str = "<suite>", stem: str = "suite", known_variants: Optional[list[str]] = None,
                sha256: Optional[str] = None) -> LoadedSuite:
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SuiteError(f"{source}{where}: not valid YAML: {problem}") from exc
    if not isinstance(data, dict):
        raise SuiteError(f"{source}: a suite must be a YAML mapping with at least `sweeps:`; got {type(data).__name__}")
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        raise SuiteError(_describe_validation_error(source, exc)) from exc
    if known_variants is None:
        from invobench.registry import all_variants

        known_variants = [v.key for v in all_variants()]
    _check_variants(source, "variants", suite.variants, known_variants)
    _check_variants(source, "exclude_variants", suite.exclude_variants, known_variants)
    _check_axes(source, "defaults", suite.defaults, allow_lists=True)
    for i, sweep in enumerate(suite.sweeps):
        where = f"sweeps[{i}]"
        if sweep.variants is not None:
            _check_variants(source, f"{where}.variants", sweep.variants, known_variants)
        elif not suite.variants:
            raise SuiteError(f"{source}: {where}: no variants to run; give `variants:` at the top level or in the sweep")
        _check_variants(source, f"{where}.exclude_variants", sweep.exclude_variants, known_variants)
        _check_axes(source, f"{where}.product", sweep.product, allow_lists=True)
        zips = sweep.zip if isinstance(sweep.zip, list) else [sweep.zip]
        seen_zip: set[str] = set()
        for j, group in enumerate(zips):
            zwhere = f"{where}.zip" + (f"[{j}]" if isinstance(sweep.zip, list) else "")
            _check_axes(source, zwhere, group, allow_lists=True)
            lengths = {k: len(v) for k, v in group.items()}
            if len(set(lengths.values())) > 1:
                raise SuiteError(f"{source}: {zwhere}: zipped lists must have equal lengths; got "
                                 + ", ".join(f"{k}={n}" for k, n in lengths.items()))
            clash = seen_zip & set(group) | set(group) & set(sweep.product)
            if clash:
                raise SuiteError(f"{source}: {zwhere}: axis {sorted(clash)[0]!r} is given twice in one sweep "
                                 "(zip and product, or two zip groups); give each axis once")
            seen_zip |= set(group)
        for label, forms in _ALTERNATIVE_FORMS.items():
            for part, keys in (("defaults", set(suite.defaults)), (where, set(sweep.product) | seen_zip)):
                if len(forms & keys) > 1 and not (label == "size" and forms & keys == {"H", "W"}):
                    raise SuiteError(f"{source}: {part}: {label} is given in two forms ({', '.join(sorted(forms & keys))}); "
                                     f"give one ({_FORM_HELP[label]})")
        axes = set(merge_axes(suite.defaults, {**sweep.product, **{k: None for k in seen_zip}}))
        missing = [a for a in REQUIRED_AXES if a not in axes]
        if "size" not in axes and not {"H", "W"} <= axes:
            missing.append("size (or H and W)")
        if missing:
            raise SuiteError(f"{source}: {where}: missing axis {', '.join(missing)}; set it in `defaults`, `product` or `zip`")
    return LoadedSuite(suite=suite, name=suite.name or stem, path=source, sha256=sha256 or hashlib.sha256(text.encode()).hexdigest())


def expand_variant_patterns(patterns: list[str], known: list[str], where: str = "variants") -> list[str]:
    """`involution.*` -> every registered involution variant, in registry order; exact names kept in order given."""
    out: list[str] = []
    for i, pattern in enumerate(patterns):
        if any(ch in pattern for ch in "*?["):
            matches = [k for k in known if fnmatch.fnmatchcase(k, pattern)]
            if not matches:
                raise SuiteError(f"{where}[{i}]: pattern {pattern!r} matches no variant. Known: {', '.join(known)}")
        elif pattern in known:
            matches = [pattern]
        else:
            raise SuiteError(f"{where}[{i}]: unknown variant {pattern!r}.{did_you_mean(pattern, known)} "
                             f"Known: {', '.join(known)} (write family.name, or family.* for all of a family)")
        out += [m for m in matches if m not in out]
    return out


def _check_variants(source: str, where: str, patterns: list[str], known: list[str]) -> None:
    try:
        expand_variant_patterns(patterns, known, where)
    except SuiteError as exc:
        raise SuiteError(f"{source}: {exc}") from None


def check_axis_value(axis: str, value: Any) -> Optional[str]:
    """Why `value` is invalid for `axis` (None when it is valid)."""
    if axis in INT_AXES:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{value!r} is not an integer; {axis} must be an integer >= 1"
        if value < 1:
            return f"{value} is invalid; {axis} must be >= 1"
        if axis == "K" and value % 2 == 0:
            return f"K={value} is even; every operator centres its K×K window on the pixel, so K must be odd (1, 3, 5, 7, ...)"
        return None
    if axis in CHOICE_AXES:
        valid = CHOICE_AXES[axis]
        if value not in valid:
            return f"{value!r} is not a valid {axis}.{did_you_mean(str(value), valid)} Valid values: {', '.join(valid)}"
        return None
    if axis in BOOL_AXES:
        return None if isinstance(value, bool) else f"{value!r} is not true/false"
    raise AssertionError(axis)


def _check_axes(source: str, where: str, axes: dict[str, Any], allow_lists: bool) -> None:
    for axis, value in axes.items():
        if axis not in AXES:
            raise SuiteError(f"{source}: {where}.{axis}: unknown axis {axis!r}.{did_you_mean(axis, AXES)} "
                             f"Valid axes: {', '.join(AXES)}")
        values = value if isinstance(value, list) else [value]
        if isinstance(value, list) and not value:
            raise SuiteError(f"{source}: {where}.{axis}: empty list; give at least one value")
        for k, item in enumerate(values):
            problem = check_axis_value(axis, item)
            if problem:
                index = f"[{k}]" if isinstance(value, list) else ""
                raise SuiteError(f"{source}: {where}.{axis}{index}: {problem}")


def _describe_validation_error(source: str, exc: ValidationError) -> str:
    # an unknown (misspelt) key explains the other errors best ("budgte" leaves budget at its default)
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    err = errors[0]
    loc = err["loc"]
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    if err["type"] == "extra_forbidden":
        model = _model_at(loc[:-1])
        valid = list(model.model_fields) if model is not None else []
        return (f"{source}: {path}: unknown key {loc[-1]!r}.{did_you_mean(str(loc[-1]), valid)} "
                f"Valid keys here: {', '.join(valid)}")
    if err["type"] == "missing":
        return f"{source}: {path}: required key is missing"
    value = err.get("input")
    return f"{source}: {path or '(top level)'}: invalid value {value!r}: {err['msg']}"


def _model_at(loc: tuple) -> Optional[type[BaseModel]]:
    """The pydantic model a validation error location points into (for listing its valid keys)."""
    model: Optional[type[BaseModel]] = Suite
    for part in loc:
        if isinstance(part, int):
            continue
        if model is None or part not in model.model_fields:
            return None
        model = {"budget": Budget, "roofline": RooflineConfig, "sweeps": Sweep}.get(part)
    return model
