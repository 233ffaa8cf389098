"""One Jinja2 environment for every report: autoescaping on (ticket text is hostile input)."""

from __future__ import annotations

import html as html_lib
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("triage.report", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "j2"), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda x, digits=1: "–" if x is None else f"{100 * x:.{digits}f}%"
    env.filters["num"] = lambda x: "–" if x is None else f"{x:,}"
    env.filters["sections"] = sections
    return env


_SECTION = re.compile(r'<section id="([^"]+)"[^>]*>\s*<h2[^>]*>(.*?)</h2>', re.S)
_TAG = re.compile(r"<[^>]+>")


def sections(html: str) -> list[tuple[str, str]]:
    """(id, heading text) of each top-level report section in rendered HTML, for the contents bar."""
    return [(m[1], html_lib.unescape(_TAG.sub("", m[2])).strip()) for m in _SECTION.finditer(str(html))]


def render_to_file(template: str, out: Path, **context: Any) -> Path:
    html = environment().get_template(template).render(**context)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out)  # readers never see a half-written report
    return out
