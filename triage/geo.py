"""Address resolution against the Beijing gazetteer: district → street (街乡镇) → community.

How people name places differs from the official list, so every unit gets several aliases:

- districts: 朝阳区 / 朝阳
- streets:   望京街道 / 望京; 沙河地区 / 沙河镇 / 沙河 (地区办事处 = the 镇/乡 of the same stem)
- communities: 多福巷社区居委会 / 多福巷社区 / 多福巷; 七里渠南村村委会 / 七里渠南村
- hand-written aliases in ``taxonomy/aliases.csv`` (well-known place names, abbreviations)

All aliases go into one Aho–Corasick automaton; a lookup scans the text once, keeps the leftmost-
longest non-overlapping matches (so 东花市 wins over 花市), then picks the most specific unit that is
consistent with every other match. Bare two-character stems (平房, 温泉 …) are weak evidence: they
count only when nothing contradicts them, and a stop-list of everyday words never counts alone.
A district alone never yields a street.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import ahocorasick

from triage.config import get_settings
from triage.text import normalize

_COMMUNITY_SUFFIX = re.compile(r"(社区居民委员会|社区居委会|居民委员会|村民委员会|村委会|居委会|委员会)$")
_STREET_SUFFIX = re.compile(r"(街道办事处|街道|地区办事处|地区|镇|乡)$")
_HOUSING_SUFFIX = re.compile(
    r"(家园|小区|北里|南里|东里|西里|[东西南北]?区|里|院|苑|村|大队|庄园|公寓|花园|新村|嘉园|\d+号楼)"
)
# Two-character stems that are everyday words: never evidence on their own (need 街道/镇/社区…).
_COMMON_WORD_STEMS = {
    "平房", "温泉", "东风", "光明", "胜利", "城关", "城北", "城南", "新村", "新华", "向阳", "和平",
    "花园", "果园", "中心", "二区", "七区", "一区", "三区", "北里", "南里", "东里", "西里", "河北",
    "建设", "团结", "幸福", "前进", "工业", "化工", "总院", "新鲜", "苏州", "大兴", "延庆", "怀柔",
    "密云", "海淀", "丰台", "北苑", "清河", "香山", "天桥", "宝山", "石城", "古城", "星城", "文景",
    "荣华", "滨河", "清水", "永定", "安定", "迎风", "北务", "大台", "老山", "龙山", "礼贤", "博兴",
    "天坛", "八角", "双井", "月坛", "景山", "前门", "鼓楼", "牛街", "安贞", "德胜", "方庄",
    "小关", "大屯", "空港", "通运", "兴丰", "燕园", "青塔", "上地",
}  # fmt: skip


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    level: str  # district | street | community
    district_code: str
    street_code: str | None = None


@dataclass(frozen=True)
class Resolution:
    district_code: str | None
    street_code: str | None
    community_code: str | None
    confidence: float
    method: str  # fields | address | text | none (+ ":community" / ":street" / ":district")

    @property
    def is_resolved(self) -> bool:
        return self.street_code is not None


NONE = Resolution(None, None, None, 0.0, "none")


@dataclass(frozen=True)
class _Reading:
    code: str
    level: str
    strength: int  # 3 full official name, 2 name with generic suffix or a 3+ char stem, 1 weak stem


@dataclass(frozen=True)
class _Alias:
    text: str
    readings: tuple[_Reading, ...]

    def at(self, level: str) -> list[_Reading]:
        return [r for r in self.readings if r.level == level]


class Gazetteer:
    """The administrative units and every alias for them, with a matcher over all aliases."""

    def __init__(self, directory: Path | str | None = None, aliases_file: Path | str | None = None):
        tax = get_settings().taxonomy_dir
        d = Path(directory) if directory else tax / "gazetteer"
        self.units: dict[str, Unit] = {}
        self.by_name: dict[str, list[str]] = {}
        self._load_units(d)
        alias_path = Path(aliases_file) if aliases_file else tax / "aliases.csv"
        self._aliases = self._build_aliases(alias_path)
        self._automaton = ahocorasick.Automaton()
        for key, alias in self._aliases.items():
            self._automaton.add_word(key, alias)
        self._automaton.make_automaton()

    # -- loading -----------------------------------------------------------------------------
    def _load_units(self, d: Path) -> None:
        for row in _read_csv(d / "beijing_districts.csv"):
            self._add(Unit(row["code"], row["name"], "district", row["code"]))
        for row in _read_csv(d / "beijing_streets.csv"):
            self._add(Unit(row["code"], row["name"], "street", row["district_code"], row["code"]))
        for row in _read_csv(d / "beijing_communities.csv"):
            self._add(Unit(row["code"], row["name"], "community", row["district_code"], row["street_code"]))

    def _add(self, unit: Unit) -> None:
        self.units[unit.code] = unit
        self.by_name.setdefault(unit.name, []).append(unit.code)

    def _build_aliases(self, alias_path: Path) -> dict[str, _Alias]:
        found: dict[str, dict[str, tuple[str, int]]] = {}  # text -> code -> (level, strength)

        def add(text: str, unit: Unit, strength: int) -> None:
            text = normalize(text)
            if len(text) < 2:
                return
            if len(text) == 2 and text in _COMMON_WORD_STEMS and strength < 2:
                return
            per = found.setdefault(text, {})
            lvl, st = per.get(unit.code, (unit.level, 0))
            per[unit.code] = (lvl, max(st, strength))

        for u in self.units.values():
            add(u.name, u, 3)
            if u.level == "district":
                stem = u.name[:-1] if u.name.endswith("区") else u.name
                add(stem, u, 2 if len(stem) >= 2 else 1)
            elif u.level == "street":
                stem = _STREET_SUFFIX.sub("", u.name)
                for suffix in ("街道", "地区", "镇", "乡"):
                    if not stem.endswith(suffix):
                        add(stem + suffix, u, 2)
                add(stem, u, 2 if len(stem) >= 3 else 1)
            else:
                base = _COMMUNITY_SUFFIX.sub("", u.name)
                add(base, u, 2 if len(base) >= 3 else 1)
                if base.endswith("社区"):
                    stem = base[:-2]
                    add(stem, u, 2 if len(stem) >= 3 else 1)
                elif not base.endswith("村") and u.name.endswith(("村委会", "村民委员会")):
                    add(base + "村", u, 2)
                else:
                    add(base + "社区", u, 2)
                    if base.endswith("村") and len(base) >= 4:
                        add(base[:-1], u, 1)
        for row in _read_csv(alias_path) if alias_path.exists() else []:
            for code in row["codes"].split("|"):
                unit = self.units.get(code.strip())
                if unit is None:
                    raise ValueError(f"{alias_path}: alias {row['alias']!r} names unknown code {code!r}")
                add(row["alias"], unit, int(row.get("strength") or 2))

        return {
            text: _Alias(text, tuple(_Reading(code, lvl, st) for code, (lvl, st) in sorted(per.items())))
            for text, per in found.items()
        }

    # -- matching ------------------------------------------------------------------------------
    def matches(self, text: str) -> list[_Alias]:
        """Leftmost-longest, non-overlapping alias matches in normalised ``text``."""
        return [a for _, a in self.spans(text)]

    def spans(self, text: str) -> list[tuple[int, _Alias]]:
        """(end offset, alias) of the leftmost-longest, non-overlapping matches."""
        hits = [(end - len(a.text) + 1, end + 1, a) for end, a in self._automaton.iter(text)]
        hits.sort(key=lambda h: (h[0], -(h[1] - h[0])))
        out: list[tuple[int, _Alias]] = []
        last_end = -1
        for start, end, alias in hits:
            if start >= last_end:
                out.append((end, alias))
                last_end = end
            elif end > last_end and (end - start) > len(out[-1][1].text):
                # a longer match starting inside the previous one: keep the longer
                out[-1] = (end, alias)
                last_end = end
        return out

    def alias_texts(self) -> list[str]:
        return list(self._aliases)

    def unit(self, code: str | None) -> Unit | None:
        return self.units.get(code) if code else None


class Resolver:
    """Resolve an address (and, failing that, the complaint text) to gazetteer codes."""

    def __init__(self, gazetteer: Gazetteer | None = None):
        self.gaz = gazetteer or get_gazetteer()

    def resolve(
        self,
        address: str | None = None,
        text: str | None = None,
        district: str | None = None,
        street: str | None = None,
        community: str | None = None,
    ) -> Resolution:
        fields = " ".join(normalize(x) for x in (district, street, community) if x)
        if fields:
            r = self._resolve_one(fields + " " + normalize(address or ""), "fields")
            if r.street_code:
                return r
            hint = r.district_code
        else:
            hint = None
        r = self._resolve_one(normalize(address or ""), "address", hint)
        if r.street_code:
            return r
        if text:
            t = self._resolve_one(normalize(text), "text", r.district_code or hint)
            if t.street_code:
                return Resolution(
                    t.district_code, t.street_code, t.community_code, round(t.confidence * 0.85, 3), t.method
                )
        if r.district_code:
            return r
        return NONE

    def street_candidates(self, address: str | None, text: str | None = None) -> list[str]:
        """Streets the ticket could belong to, best first: the resolution, then every other street
        named (or owning a community named) in the address and text, in the resolved district
        first. Used to re-dispatch a returned ticket to the resolver's next choice."""
        best = self.resolve(address, text)
        out: list[str] = [best.street_code] if best.street_code else []
        scored: dict[str, int] = {}
        for s in (normalize(address or ""), normalize(text or "")):
            for m in self.gaz.matches(s) if s else []:
                for r in m.readings:
                    code = r.code if r.level == "street" else self.gaz.units[r.code].street_code
                    if r.level == "district" or not code:
                        continue
                    same = best.district_code and self.gaz.units[code].district_code == best.district_code
                    scored[code] = max(scored.get(code, 0), r.strength + (10 if same else 0))
        out += [c for c, _ in sorted(scored.items(), key=lambda kv: (-kv[1], kv[0])) if c not in out]
        return out

    def _resolve_one(self, s: str, source: str, district_hint: str | None = None) -> Resolution:
        if not s:
            return NONE
        spans = self.gaz.spans(s)
        matches = [a for _, a in spans]
        # A weak two-character stem right before a housing word (钟鼓家园, 永光小区, 土井北里) is how
        # callers name their compound: it counts when it names exactly one community.
        anchored = {a.text for end, a in spans if _HOUSING_SUFFIX.match(s, end)}
        if not matches:
            if district_hint:
                return Resolution(district_hint, None, None, 0.5, f"{source}:district")
            return NONE
        units = self.gaz.units
        districts = {r.code for m in matches for r in m.at("district")}
        if district_hint and not districts:
            districts = {district_hint}

        def in_districts(code: str) -> bool:
            return not districts or units[code].district_code in districts

        # Streets consistent with the districts named; weak stems count only if unambiguous.
        street_best: dict[str, int] = {}
        street_strength = 0
        street_spans: set[str] = set()
        named_outright = False  # 望京街道, 沙河镇: the caller wrote the street, not just an area stem
        for m in matches:
            readings = [r for r in m.at("street") if in_districts(r.code)]
            if not readings or (max(r.strength for r in readings) == 1 and len(readings) > 1):
                continue
            for r in readings:
                street_best[r.code] = max(street_best.get(r.code, 0), r.strength)
            street_strength = max(street_strength, max(r.strength for r in readings))
            street_spans.add(m.text)
            named_outright = named_outright or bool(_STREET_SUFFIX.search(m.text))
        # 和义街道…南苑北里: an official street name outranks a bare stem read as another street.
        street_codes = {c for c, st in street_best.items() if st == street_strength}
        if len(street_codes) > 1:
            street_codes = set(street_best)

        # Communities consistent with the districts (and, if possible, the streets) named. A text
        # read as a street is not also read as a community (望京 is the area, not 望京社区).
        def communities(require_street: bool) -> tuple[set[str], int]:
            codes: set[str] = set()
            strength = 0
            for m in matches:
                if m.text in street_spans:
                    continue
                readings = [r for r in m.at("community") if in_districts(r.code)]
                if require_street:
                    readings = [r for r in readings if units[r.code].street_code in street_codes]
                if not readings:
                    continue
                best = max(r.strength for r in readings)
                if best == 1 and len(readings) == 1 and m.text in anchored:
                    best = 2
                if best == 1 and (len(readings) > 1 or not (districts or street_codes)):
                    continue  # a bare short community stem alone is too weak
                codes.update(r.code for r in readings)
                strength = max(strength, best)
            return codes, strength

        comm_codes, comm_strength = communities(require_street=bool(street_codes))
        overrides_street = False
        if street_codes and not comm_codes and not named_outright:
            # 回龙观龙泽苑: the community is in a street split off from the area named; the more
            # specific unit wins when it is unambiguous on its own. A street named outright
            # (望京街道南湖东园北门) is not overruled by an estate name read as another street's
            # community: estate names outlive boundary changes, a written street is deliberate.
            alone, alone_strength = communities(require_street=False)
            street_districts = {units[c].district_code for c in street_codes}
            if (
                len(alone) == 1
                and alone_strength >= 2
                and units[next(iter(alone))].district_code in street_districts
            ):
                comm_codes, comm_strength, overrides_street = alone, alone_strength, True

        if len(comm_codes) == 1:
            (cc,) = comm_codes
            u = units[cc]
            if overrides_street:
                conf = 0.85
            elif street_codes or districts:
                conf = 0.97
            else:
                conf = 0.9 if comm_strength >= 2 else 0.75
            return Resolution(u.district_code, u.street_code, cc, conf, f"{source}:community")
        if comm_codes:
            comm_streets = {units[c].street_code for c in comm_codes}
            if len(comm_streets) == 1:
                (sc,) = comm_streets
                return Resolution(units[sc].district_code, sc, None, 0.85, f"{source}:street")
        if len(street_codes) == 1:
            (sc,) = street_codes
            conf = 0.95 if street_strength >= 2 else 0.75
            if districts:
                conf = min(0.98, conf + 0.02)
            return Resolution(units[sc].district_code, sc, None, conf, f"{source}:street")
        candidate_districts = districts or {units[c].district_code for c in street_codes | comm_codes}
        if len(candidate_districts) == 1:
            (dc,) = candidate_districts
            return Resolution(dc, None, None, 0.6, f"{source}:district")
        return NONE


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(fh)]


@lru_cache(maxsize=1)
def get_gazetteer() -> Gazetteer:
    return Gazetteer()


@lru_cache(maxsize=1)
def get_resolver() -> Resolver:
    return Resolver(get_gazetteer())
