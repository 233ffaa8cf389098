"""The taxonomy is data (``taxonomy/*.yaml``); this module loads and validates it.

Files:
- ``opinion.yaml``     the opinion's areas (一)…(十) and tasks 1–25, so clause references can be checked
- ``sla_tiers.yaml``   deadline tiers (emergency 2 h, urgent 24 h, general 7 d, complex 15 d)
- ``departments.yaml`` responsible units
- ``categories.yaml``  the 29 categories: scope, clauses, lead unit, departments, SLA tier, keywords

A broken file fails at load time with :class:`TaxonomyError` naming the file, the entry and the field.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from triage.config import get_settings

# The 29 category codes are a fixed contract with the hotline's other systems.
CATEGORY_CODES: tuple[str, ...] = (
    "street_vending", "unlicensed_business", "wall_opening", "group_rental", "basement_dwelling",
    "short_term_rental", "illegal_construction", "vacated_land", "under_bridge", "construction_site",
    "shantytown_relocation", "road_handover", "community_facilities", "property_management",
    "old_community_renovation", "sanitation", "environment_nuisance", "safety_hazard",
    "overhead_cables", "waterfront_greenway", "convenience_services", "enterprise_relocation",
    "public_service_area_order", "traffic_parking", "labor_social_security", "education",
    "health_medical", "consumer_rights", "other",
)  # fmt: skip

_CLAUSE = re.compile(r"^\((?P<area>[一二三四五六七八九十]+)\)(?P<task>\d+)$")


class TaxonomyError(ValueError):
    """A taxonomy file is missing or invalid. The message names file, entry and field."""

    def __init__(self, file: Path | str, message: str, entry: str | None = None, field: str | None = None):
        self.file, self.entry, self.field = str(file), entry, field
        where = f"{file}"
        if entry is not None:
            where += f", entry {entry}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {message}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Task(_Strict):
    no: int
    title: str


class Area(_Strict):
    code: str
    title: str
    tasks: list[Task]


class SlaTier(_Strict):
    code: str
    name: str
    hours: float = Field(gt=0)
    description: str = ""


class Department(_Strict):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    name_en: str = ""
    level: str = Field(pattern=r"^(street|district|municipal|enterprise|centre)$")


class Category(_Strict):
    code: str
    name: str
    name_en: str = ""
    area: str
    clauses: list[str] = []
    in_special_action: bool
    scope: str = Field(min_length=10)
    lead: str
    departments: list[str] = []
    sla_tier: str
    keywords: list[str] = Field(min_length=1)

    @field_validator("keywords")
    @classmethod
    def _keywords_non_empty(cls, v: list[str]) -> list[str]:
        if any(not str(k).strip() for k in v):
            raise ValueError("keywords must not contain empty strings")
        return [str(k).strip() for k in v]


@dataclass(frozen=True)
class Taxonomy:
    version: str
    categories: dict[str, Category]
    departments: dict[str, Department]
    tiers: dict[str, SlaTier]
    areas: dict[str, Area]
    directory: Path
    _by_name: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def codes(self) -> list[str]:
        return list(self.categories)

    @property
    def fingerprint(self) -> str:
        """Identifies the label set: models record it and refuse to run against another one."""
        return hashlib.sha256("\n".join(sorted(self.categories)).encode()).hexdigest()[:12]

    def category(self, code: str) -> Category:
        try:
            return self.categories[code]
        except KeyError:
            raise KeyError(f"unknown category code {code!r}; known: {', '.join(self.codes)}") from None

    def code_for(self, code_or_name: str) -> str | None:
        """Accept a code (property_management) or a Chinese name (物业管理), written as people do:
        any case, traditional script, full- or half-width brackets, curly or straight quotes, spaces."""
        if code_or_name in self.categories:
            return code_or_name
        return self._by_name.get(code_or_name) or self._by_name.get(name_key(code_or_name))

    def all_keywords(self) -> list[str]:
        return [k for c in self.categories.values() for k in c.keywords]


# libyaml's parser when PyYAML has it (the wheels do): the taxonomy loads in every task process,
# and the pure-Python parser took ~1 s for it
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml_text(text: str) -> Any:
    """``yaml.safe_load`` with the fast loader."""
    return yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader


def _read_yaml(path: Path) -> Any:
    if not path.exists():
        raise TaxonomyError(path, "file is missing")
    try:
        return read_yaml_text(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise TaxonomyError(path, f"not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except yaml.YAMLError as exc:
        raise TaxonomyError(path, f"not valid YAML: {exc}") from exc


def _entries(path: Path, key: str, model: type[_Strict]) -> list[Any]:
    data = _read_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise TaxonomyError(path, f"expected a mapping with a list under '{key}'")
    items = []
    for i, raw in enumerate(data[key], start=1):
        label = f"#{i}" + (f" ({raw.get('code')})" if isinstance(raw, dict) and raw.get("code") else "")
        if not isinstance(raw, dict):
            raise TaxonomyError(path, "expected a mapping", entry=label)
        try:
            items.append(model.model_validate(raw))
        except ValidationError as exc:
            err = exc.errors()[0]
            fld = ".".join(str(p) for p in err["loc"]) or None
            raise TaxonomyError(path, err["msg"], entry=label, field=fld) from None
    seen: set[str] = set()
    for item in items:
        code = getattr(item, "code", None)
        if code in seen:
            raise TaxonomyError(path, f"duplicate code {code!r}", entry=code, field="code")
        seen.add(code)
    return items


def load_taxonomy(directory: Path | str | None = None) -> Taxonomy:
    """Load and cross-check every taxonomy file; raise TaxonomyError on the first problem."""
    d = Path(directory) if directory else get_settings().taxonomy_dir
    return _load_cached(d.resolve())


@lru_cache(maxsize=4)
def _load_cached(d: Path) -> Taxonomy:
    areas = {a.code: a for a in _entries(d / "opinion.yaml", "areas", Area)}
    tiers = {t.code: t for t in _entries(d / "sla_tiers.yaml", "tiers", SlaTier)}
    departments = {x.code: x for x in _entries(d / "departments.yaml", "departments", Department)}
    cat_path = d / "categories.yaml"
    categories = {c.code: c for c in _entries(cat_path, "categories", Category)}
    version = str((_read_yaml(cat_path) or {}).get("version") or "")
    if not version:
        raise TaxonomyError(cat_path, "missing top-level 'version'", field="version")

    unknown = [c for c in categories if c not in CATEGORY_CODES]
    if unknown:
        raise TaxonomyError(
            cat_path, "unknown category code (the 29 codes are fixed)", entry=unknown[0], field="code"
        )
    missing = [c for c in CATEGORY_CODES if c not in categories]
    if missing:
        raise TaxonomyError(cat_path, f"categories missing: {', '.join(missing)}", field="code")

    label = {code: f"#{i} ({code})" for i, code in enumerate(categories, start=1)}
    for c in categories.values():
        if c.area != "general" and c.area not in areas:
            raise TaxonomyError(
                cat_path, f"area {c.area!r} is not in opinion.yaml", entry=label[c.code], field="area"
            )
        if c.in_special_action and not c.clauses:
            raise TaxonomyError(
                cat_path, "in_special_action needs clause references", entry=label[c.code], field="clauses"
            )
        for ref in c.clauses:
            m = _CLAUSE.match(ref)
            if not m:
                raise TaxonomyError(
                    cat_path,
                    f"clause {ref!r} is not of the form '(四)12'",
                    entry=label[c.code],
                    field="clauses",
                )
            area = areas.get(m["area"])
            if area is None or int(m["task"]) not in {t.no for t in area.tasks}:
                raise TaxonomyError(
                    cat_path,
                    f"clause {ref!r} does not exist in the opinion (opinion.yaml)",
                    entry=label[c.code],
                    field="clauses",
                )
        if c.sla_tier not in tiers:
            raise TaxonomyError(
                cat_path,
                f"unknown SLA tier {c.sla_tier!r}; known: {', '.join(tiers)}",
                entry=label[c.code],
                field="sla_tier",
            )
        for dep in [c.lead, *c.departments]:
            if dep not in departments:
                fld = "lead" if dep == c.lead else "departments"
                raise TaxonomyError(
                    cat_path,
                    f"unknown department {dep!r} (see departments.yaml)",
                    entry=label[c.code],
                    field=fld,
                )

    by_name = {c.name: c.code for c in categories.values()}
    by_name |= {name_key(k): c.code for c in categories.values() for k in (c.name, c.code)}
    return Taxonomy(version, categories, departments, tiers, areas, d, by_name)


_QUOTES_AND_SPACE = re.compile(r"[\s\"'“”‘’「」『』]")


def name_key(value: str) -> str:
    """A category name or code as compared: normalised (simplified, half-width brackets), without
    quotes or spaces, lower case — "架空线与“蜘蛛网”" and "Sanitation" find their categories."""
    from triage.text import normalize

    return _QUOTES_AND_SPACE.sub("", normalize(str(value))).lower()


def clear_cache() -> None:
    _load_cached.cache_clear()
