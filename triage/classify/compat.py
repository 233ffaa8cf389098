"""Label compatibility files: another taxonomy's labels → the built-in codes each may mean.

``taxonomy/label_compat_<name>.yaml`` (e.g. ``label_compat_tipdm7.yaml``) lists the foreign label
set and, per label, the compatible codes among the 29. It lets rows labelled in that coarser
taxonomy train the 29-code model (label-constrained self-training: ``train.constrained_labels``).
Validated strictly on load; every problem is a ``TaxonomyError`` naming file, entry and field.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError

from triage.taxonomy import CATEGORY_CODES, TaxonomyError, _read_yaml, _Strict


class _Entry(_Strict):
    label: str = Field(min_length=1)
    codes: list[str] = Field(min_length=1)


class _File(_Strict):
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    source: str = ""
    labels: list[str] = Field(min_length=2)
    compat: list[_Entry]


class LabelCompat:
    """A validated compatibility file: ``codes[label]`` is the tuple of compatible codes."""

    def __init__(self, path: Path, name: str, codes: dict[str, tuple[str, ...]]):
        self.path, self.name, self.codes = path, name, codes

    @property
    def labels(self) -> set[str]:
        return set(self.codes)

    def __repr__(self) -> str:
        return f"LabelCompat({self.name!r}: {', '.join(self.codes)})"


def load_compat(path: Path | str) -> LabelCompat:
    path = Path(path)
    data = _read_yaml(path)
    try:
        f = _File.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"]]
        entry = None
        if len(loc) >= 2 and loc[0] == "compat" and loc[1].isdigit():
            i = int(loc[1])
            raw = data["compat"][i] if isinstance(data, dict) else None
            entry = f"#{i + 1}" + (
                f" ({raw.get('label')})" if isinstance(raw, dict) and raw.get("label") else ""
            )
            loc = loc[2:]
        raise TaxonomyError(path, err["msg"], entry=entry, field=".".join(loc) or None) from None
    if len(set(f.labels)) != len(f.labels):
        dup = sorted({x for x in f.labels if f.labels.count(x) > 1})
        raise TaxonomyError(path, f"label listed twice: {', '.join(dup)}", field="labels")
    codes: dict[str, tuple[str, ...]] = {}
    for i, e in enumerate(f.compat, start=1):
        entry = f"#{i} ({e.label})"
        if e.label not in f.labels:
            raise TaxonomyError(
                path,
                f"label {e.label!r} is not in 'labels' ({', '.join(f.labels)})",
                entry=entry,
                field="label",
            )
        if e.label in codes:
            raise TaxonomyError(path, f"label {e.label!r} has a second entry", entry=entry, field="label")
        unknown = [c for c in e.codes if c not in CATEGORY_CODES]
        if unknown:
            raise TaxonomyError(
                path,
                f"unknown category code(s) {', '.join(map(repr, unknown))} (the 29 codes: taxonomy/categories.yaml)",
                entry=entry,
                field="codes",
            )
        codes[e.label] = tuple(dict.fromkeys(e.codes))
    unmapped = [x for x in f.labels if x not in codes]
    if unmapped:
        raise TaxonomyError(path, f"label(s) without an entry: {', '.join(unmapped)}", field="compat")
    return LabelCompat(path, f.name, codes)


def known_compats(taxonomy_dir: Path | str | None = None) -> list[LabelCompat]:
    """Every ``label_compat_*.yaml`` of the taxonomy directory, validated."""
    from triage.config import get_settings

    d = Path(taxonomy_dir) if taxonomy_dir else get_settings().taxonomy_dir
    return [load_compat(p) for p in sorted(d.glob("label_compat_*.yaml"))]


def compat_for(labels: set[str], taxonomy_dir: Path | str | None = None) -> LabelCompat:
    """The compatibility file whose label set holds every one of ``labels``; otherwise a
    ValueError listing the labels no file knows and the files known."""
    known = known_compats(taxonomy_dir)
    for c in known:
        if labels <= c.labels:
            return c
    best = min(known, key=lambda c: len(labels - c.labels), default=None)
    unknown = sorted(labels - best.labels) if best else sorted(labels)
    listing = "; ".join(f"{c.path.name} ({c.name}: {', '.join(c.codes)})" for c in known) or "none"
    raise ValueError(
        f"{len(unknown)} label(s) match neither the built-in taxonomy nor a label compatibility file: "
        f"{', '.join(unknown[:20])}{' …' if len(unknown) > 20 else ''}. Known mappings: {listing}"
    )
