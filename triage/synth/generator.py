"""Seeded synthetic 12345 tickets: structured columns vectorised with NumPy, texts built per row.

See ``generate_tickets``.  Everything produced here is synthetic: real street/community names from
the gazetteer, invented estates, invented people, invented phone and ID numbers, pseudo coordinates.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from triage.synth.places import LAT_RANGE, LON_RANGE, Places, load_places
from triage.taxonomy import CATEGORY_CODES

# ---------------------------------------------------------------------------------------------
# fixed vocabulary

# the 29 category codes: CATEGORY_CODES of triage.taxonomy (defined once, imported above)

# share of tickets (renormalised), shaped like real 12345 data
CATEGORY_WEIGHTS: dict[str, float] = {
    "property_management": 12,
    "traffic_parking": 10,
    "environment_nuisance": 9,
    "labor_social_security": 7,
    "consumer_rights": 7,
    "sanitation": 6,
    "construction_site": 5,
    "education": 5,
    "health_medical": 4,
    "other": 8,
    "group_rental": 3,
    "street_vending": 3,
    "illegal_construction": 3,
    "safety_hazard": 3,
    "community_facilities": 2,
    "old_community_renovation": 2,
    "short_term_rental": 1,
    "shantytown_relocation": 1.5,
    "unlicensed_business": 1.5,
    "wall_opening": 1,
    "basement_dwelling": 0.7,
    "overhead_cables": 0.8,
    "waterfront_greenway": 1,
    "convenience_services": 1,
    "public_service_area_order": 0.8,
    "under_bridge": 0.4,
    "vacated_land": 0.4,
    "road_handover": 0.3,
    "enterprise_relocation": 0.3,
}

# where each category happens: multipliers for (core, urban, near, far) districts and for villages
AFFINITY: dict[str, tuple[float, float, float, float, float]] = {
    "street_vending": (1.0, 1.2, 1.2, 0.7, 0.8),
    "unlicensed_business": (0.8, 1.0, 1.3, 1.0, 1.4),
    "wall_opening": (3.0, 1.5, 0.7, 0.3, 0.3),
    "group_rental": (1.2, 1.5, 1.3, 0.3, 0.4),
    "basement_dwelling": (1.8, 1.8, 0.8, 0.2, 0.1),
    "short_term_rental": (2.0, 1.5, 0.9, 0.6, 0.3),
    "illegal_construction": (0.6, 0.8, 1.3, 1.2, 2.0),
    "vacated_land": (0.4, 0.8, 1.4, 1.2, 2.0),
    "under_bridge": (1.5, 1.8, 0.8, 0.3, 0.5),
    "construction_site": (0.8, 1.1, 1.3, 0.7, 0.8),
    "shantytown_relocation": (1.2, 1.0, 1.3, 0.8, 1.8),
    "road_handover": (0.2, 0.8, 1.6, 0.8, 0.8),
    "community_facilities": (0.3, 0.9, 1.6, 0.8, 0.3),
    "property_management": (0.9, 1.1, 1.2, 0.6, 0.2),
    "old_community_renovation": (2.0, 1.6, 0.6, 0.4, 0.1),
    "sanitation": (0.8, 0.9, 1.1, 1.3, 1.8),
    "environment_nuisance": (1.0, 1.1, 1.0, 0.8, 1.0),
    "safety_hazard": (1.2, 1.1, 1.0, 0.8, 0.8),
    "overhead_cables": (2.5, 1.0, 0.8, 1.0, 1.4),
    "waterfront_greenway": (0.8, 1.0, 1.1, 1.2, 1.0),
    "convenience_services": (0.5, 0.9, 1.4, 1.0, 0.8),
    "enterprise_relocation": (0.2, 0.7, 1.6, 1.0, 2.0),
    "public_service_area_order": (2.5, 1.6, 0.6, 0.4, 0.3),
    "traffic_parking": (1.0, 1.1, 1.1, 0.7, 0.6),
}

CHANNELS = ("电话", "网站", "微信", "App", "微博")
CHANNEL_P = (0.58, 0.12, 0.15, 0.11, 0.04)
OPERATOR_P = (0.9, 0.1, 0.15, 0.1, 0.05)  # share of operator-voice texts per channel

# hour-of-day profile (Beijing local time): morning and afternoon peaks, a thin night
HOUR_W = np.array(
    [
        0.35,
        0.2,
        0.12,
        0.08,
        0.08,
        0.18,
        0.6,
        1.5,
        3.6,
        6.0,
        6.6,
        5.6,
        3.0,
        3.6,
        5.6,
        6.1,
        5.6,
        4.4,
        3.0,
        2.6,
        2.3,
        1.9,
        1.3,
        0.8,
    ]
)
NIGHT_W = np.zeros(24)
NIGHT_W[[20, 21, 22, 23, 0, 1, 2, 3]] = [0.5, 1.0, 2.2, 3.0, 2.4, 1.4, 0.8, 0.3]
DOW_W = np.array([1.0, 1.02, 1.0, 0.98, 0.95, 0.72, 0.66])  # Mon..Sun

MOBILE_PREFIXES = (
    "130",
    "131",
    "132",
    "133",
    "134",
    "135",
    "136",
    "137",
    "138",
    "139",
    "145",
    "147",
    "150",
    "151",
    "152",
    "153",
    "155",
    "156",
    "157",
    "158",
    "159",
    "166",
    "170",
    "173",
    "175",
    "176",
    "177",
    "178",
    "180",
    "181",
    "182",
    "183",
    "184",
    "185",
    "186",
    "187",
    "188",
    "189",
    "191",
    "195",
    "198",
    "199",
)
ID_AREAS = (
    "110101",
    "110102",
    "110105",
    "110106",
    "110107",
    "110108",
    "110109",
    "110111",
    "110112",
    "110113",
    "110114",
    "110115",
    "130102",
    "130602",
    "370102",
    "410105",
    "420106",
    "510107",
    "230103",
    "210102",
    "140105",
    "340104",
    "130825",
    "131002",
    "371302",
)
_ID_W = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

_CN_NUM = "零一二三四五六七八九十"
_ASCII_ALNUM = re.compile(r"[0-9A-Za-z]")
_FULLWIDTH = {c: c + 0xFEE0 for c in range(0x30, 0x3A)}
_FULLWIDTH.update({c: c + 0xFEE0 for c in range(0x41, 0x5B)})
_FULLWIDTH.update({c: c + 0xFEE0 for c in range(0x61, 0x7B)})

# problems that are questions or suggestions get no "it has lasted N months" clause
_NO_DURATION = ("咨询", "想问", "怎么", "哪里", "什么", "吗", "希望", "建议", "表扬", "感谢", "请问")

# ambiguity knobs: real tickets overlap between neighbouring categories (see `confusable` in the
# phrase bank).  They keep a char-n-gram classifier well below 100 % accuracy, as on real data.
P_NOISE = 0.05  # whole ticket written like a neighbouring category, label unchanged
P_VAGUE = 0.05  # core problem is vague ("还是XX的事")
P_SWAP = 0.075  # core problem sentence from a neighbouring category, rest from the label's
P_NB_DETAIL = 0.16  # share of detail clauses borrowed from a neighbouring category (place problems)
P_NB_DETAIL_PERSON = 0.05  # ... for person-centred categories (wages, schools, hospitals ...)
P_SECONDARY = 0.16  # second issue from another category

DEFAULT_END = date(2026, 11, 20)
DEFAULT_DAYS = 42
HEATING_START = (11, 15)


@dataclass
class SynthResult:
    """Generated tickets plus the ground truth of what was injected.

    ``truth`` holds ``surges`` (street_code, category, day, extra_count, ...), ``events``
    (event_key, street_code, community_code, place_name, category, ticket_ids, ...) and the
    generation parameters.
    """

    tickets: pd.DataFrame
    truth: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# phrase bank


@lru_cache(maxsize=1)
def load_bank() -> dict:
    with open(Path(__file__).with_name("phrasebank.yaml"), encoding="utf-8") as fh:
        bank = yaml.safe_load(fh)
    missing = set(CATEGORY_CODES) - set(bank["categories"])
    if missing:  # pragma: no cover - guarded by tests
        raise ValueError(f"phrasebank.yaml lacks categories: {sorted(missing)}")
    return bank


class _Slots(dict):
    """Slot values for one ticket; unknown slots are drawn lazily from ``pools`` and then fixed."""

    __slots__ = ("pools", "r")

    def __missing__(self, key):
        pool = self.pools.get(key)
        if not pool:
            return ""
        v = pool[int(self.r() * len(pool))]
        self[key] = v
        return v


class _Cat:
    __slots__ = (
        "code",
        "topics",
        "problems",
        "details",
        "effects",
        "demands",
        "pools",
        "heating",
        "consult",
        "neighbors",
        "night",
        "person",
        "topic_for",
    )

    def __init__(self, code: str, spec: dict, generic_slots: dict, neighbors: list[str]):
        self.code = code
        self.topics = spec["topics"]
        self.problems = spec["problems"]
        self.details = spec.get("details", [])
        self.effects = spec.get("effects", [])
        self.demands = spec.get("demands", [])
        self.heating = spec.get("heating", [])
        self.consult = bool(spec.get("consult", False))
        self.night = float(spec.get("night", 0.04))
        pools = {k: list(v) for k, v in generic_slots.items()}
        for k, v in (spec.get("slots") or {}).items():
            pools[k] = [str(x) for x in v]
        self.pools = pools
        self.neighbors = neighbors
        self.person = spec.get("kind") == "person"
        # the title topic that fits each problem fragment best (shared character bigrams)
        self.topic_for = {f: _topics_for(f, self.topics) for f in self.problems + self.heating}


def _topics_for(fragment: str, topics: list[str]) -> list[str]:
    grams = {fragment[i : i + 2] for i in range(len(fragment) - 1)}
    scores = [sum(t[j : j + 2] in grams for j in range(len(t) - 1)) for t in topics]
    best = max(scores) if scores else 0
    return [t for t, sc in zip(topics, scores, strict=True) if sc == best] if best > 0 else list(topics)


# ---------------------------------------------------------------------------------------------
# small helpers (per row; keep them cheap)


def _pick(r, seq):
    return seq[int(r() * len(seq))]


def _cn(n: int) -> str:
    if n <= 10:
        return _CN_NUM[n]
    if n < 20:
        return "十" + (_CN_NUM[n - 10] if n > 10 else "")
    return str(n)


def _mobile(r) -> str:
    return _pick(r, MOBILE_PREFIXES) + f"{int(r() * 1e8):08d}"


def _format_mobile(r, num: str) -> str:
    x = r()
    if x < 0.7:
        return num
    if x < 0.85:
        return f"{num[:3]} {num[3:7]} {num[7:]}"
    return f"{num[:3]}-{num[3:7]}-{num[7:]}"


def _landline(r) -> str:
    num = "6" + f"{int(r() * 1e7):07d}"
    x = r()
    if x < 0.6:
        return "010-" + num
    if x < 0.8:
        return "010" + num
    return "（010）" + num


def _id_number(r) -> str:
    area = _pick(r, ID_AREAS)
    birth = date(1950, 1, 1) + timedelta(days=int(r() * 20000))
    body = area + birth.strftime("%Y%m%d") + f"{int(r() * 1000):03d}"
    s = sum(int(c) * w for c, w in zip(body, _ID_W, strict=True))
    return body + _ID_CHECK[s % 11]


# ---------------------------------------------------------------------------------------------
# the text builder


class _Builder:
    def __init__(self, places: Places):
        bank = load_bank()
        g = bank["generic"]
        self.g = g
        gs = {k: [str(x) for x in v] for k, v in g["slots"].items()}
        conf = bank["confusable"]
        self.cats = [_Cat(c, bank["categories"][c], gs, conf.get(c, [])) for c in CATEGORY_CODES]
        self.cat_index = {c: i for i, c in enumerate(CATEGORY_CODES)}
        self.neighbor_idx = [[self.cat_index[x] for x in c.neighbors] for c in self.cats]
        # detail clauses are only borrowed between categories of the same kind (place vs person)
        self.detail_nb = [
            [j for j in nb if self.cats[j].person == self.cats[i].person]
            for i, nb in enumerate(self.neighbor_idx)
        ]
        w = np.array([CATEGORY_WEIGHTS[c] for c in CATEGORY_CODES])
        self.cat_cum = np.cumsum(w / w.sum()).tolist()
        self.surge_specs = bank["surges"]
        self.event_specs = bank["events"]
        st, cm = places.streets, places.comms
        self.st_spoken = st["spoken"].tolist()
        self.st_name = st["name"].tolist()
        self.st_dist = st["district_name"].tolist()
        self.cm_street = cm["street_idx"].tolist()
        self.cm_short = cm["short"].tolist()
        self.cm_vil = cm["is_village"].tolist()
        self.cm_est = cm["estates"].tolist()

    # --- locations -------------------------------------------------------------------------
    def building(self, r, vil: bool) -> str:
        if vil:
            x = r()
            if x < 0.5:
                return f"{int(r() * 120) + 1}号院"
            return _pick(r, ("村东头", "村西头", "村北", "村口", "南街", "后街"))
        n = int(r() * 28) + 1
        return (_cn(n) if r() < 0.1 else str(n)) + _pick(r, ("号楼", "号楼", "号楼", "栋", "号楼"))

    def loc_phrase(self, r, ci: int, est: str, bld: str) -> str:
        si = self.cm_street[ci]
        dist = self.st_dist[si]
        spoken = self.st_spoken[si]
        sp = spoken[0] if r() < 0.35 else _pick(r, spoken)
        short = self.cm_short[ci]
        x = r()
        if self.cm_vil[ci]:
            if x < 0.3:
                return dist + sp + est
            if x < 0.7:
                return sp + est
            if x < 0.85:
                return est
            return sp + est + bld
        if x < 0.18:
            return dist + spoken[0] + est
        if x < 0.4:
            return sp + est
        if x < 0.6:
            return est
        if x < 0.72:
            return est + bld
        if x < 0.82:
            return dist + short
        if x < 0.9:
            return sp + short + est
        return dist + sp + est

    def address(self, r, ci: int, est: str, bld: str) -> str | None:
        x = r()
        if x < 0.07:
            return None
        if x < 0.10:
            return ""
        if x < 0.135:
            return _pick(r, self.g["useless_addresses"])
        si = self.cm_street[ci]
        dist = self.st_dist[si]
        spoken = self.st_spoken[si]
        sp = _pick(r, spoken)
        short = self.cm_short[ci]
        y = r()
        if self.cm_vil[ci]:
            num = bld[:-1] if bld.endswith("号院") and r() < 0.7 else f"{int(r() * 200) + 1}号"
            if y < 0.3:
                a = dist + spoken[0] + est + num
            elif y < 0.6:
                a = sp + est
            elif y < 0.8:
                a = sp + est + num
            else:
                a = est + _pick(r, ("", "村委会附近", "大队", num))
        else:
            unit = f"{int(r() * 6) + 1}单元"
            room = f"{int(r() * 24) + 1}0{int(r() * 4) + 1}"
            if y < 0.25:
                a = dist + spoken[0] + est + bld
            elif y < 0.45:
                a = sp + est + (bld if r() < 0.5 else "")
            elif y < 0.6:
                a = est + bld + (unit + room if r() < 0.4 else "")
            elif y < 0.7:
                a = est
            elif y < 0.8:
                a = dist + short
            elif y < 0.88:
                a = dist + sp + short + est
            elif y < 0.94:
                a = est + _pick(r, ("北门", "南门", "东门", "西门", "附近", "南侧", "对面", "底商"))
            else:
                a = dist + est
        if r() < 0.06:
            a = "北京市" + a
        if r() < 0.05:
            a = a.translate(_FULLWIDTH)
        return a

    # --- text ------------------------------------------------------------------------------
    def _fmt(self, frag: str, S: _Slots) -> str:
        return frag.format_map(S) if "{" in frag else frag

    def text_and_title(
        self,
        r,
        cat_i: int,
        ci: int,
        op: bool,
        heating: bool,
        pii_phone: int,
        pii_id: bool,
        override: dict | None = None,
    ) -> tuple[str, str | None, str, str]:
        g = self.g
        nbs = self.neighbor_idx[cat_i]
        # operators and citizens blur neighbouring categories: now and then the whole ticket reads
        # like a neighbour (label noise as in real labelled exports)
        if override is None and nbs and r() < P_NOISE:
            cat_i = _pick(r, nbs)
            nbs = self.neighbor_idx[cat_i]
        cat = self.cats[cat_i]
        person = cat.person
        est_list = self.cm_est[ci]
        est = est_list[0] if r() < 0.6 else _pick(r, est_list)
        if override is not None and "est" in override["slots"]:
            est = override["slots"]["est"]
        vil = self.cm_vil[ci]
        bld = self.building(r, vil)
        loc = self.loc_phrase(r, ci, est, bld)
        si = self.cm_street[ci]
        spoken = self.st_spoken[si]
        base = {
            "loc": loc,
            "est": est,
            "bld": bld,
            "comm": self.cm_short[ci],
            "dist": self.st_dist[si],
            "street": _pick(r, spoken),
            "street_full": spoken[0],
            "I": ("来电人" if r() < 0.25 else "其") if op else "我",
            "we": _pick(r, ("居民们", "他们", "周边居民", "业主们")) if op else "我们",
        }
        S = _Slots(base)
        S.pools = cat.pools
        S.r = r
        fmt = self._fmt

        # the core problem, chosen first so that the title topic can match it
        a = r()
        prob_raw = None
        S_prob = S
        if override is not None:
            S.update(override["slots"])
            prob_raw = _pick(r, override["problems"])
            S["topic"] = _pick(r, override["topics"])
        elif a < P_VAGUE:
            S["topic"] = _pick(r, cat.topics)
            prob_raw = _pick(r, g["vague"])
        else:
            if a < P_VAGUE + P_SWAP and nbs:
                nb = self.cats[_pick(r, nbs)]
                S_prob = _Slots(base)
                S_prob.pools = nb.pools
                S_prob.r = r
                prob_raw = _pick(r, nb.problems)
                S["topic"] = _pick(r, cat.topics)
            else:
                if heating and cat.heating and r() < 0.35:
                    prob_raw = _pick(r, cat.heating)
                else:
                    prob_raw = _pick(r, cat.problems)
                S["topic"] = _pick(r, cat.topic_for[prob_raw])
        prob = fmt(prob_raw, S_prob)
        # questions and today's sudden incidents (surges) get no "it has lasted N months" clause
        question = any(m in prob for m in _NO_DURATION) or (
            override is not None and override["kind"] == "surge"
        )

        # length profile: short / normal / long / letter
        x = r()
        profile = 0 if x < 0.12 else (1 if x < 0.6 else (2 if x < 0.9 else 3))
        long_ = profile >= 2
        letter = profile == 3
        stories = g["stories_person"] if person else g["stories"]
        fillers = g["fillers_person"] if person else g["fillers"]
        history = g["history_person"] if person else g["history"]
        p_nb = P_NB_DETAIL_PERSON if person else P_NB_DETAIL

        sents: list[str] = []
        head = ""
        if letter and not op:
            head = _pick(r, ("尊敬的领导：您好！", "尊敬的领导：", "各位领导：你们好！", "领导您好！"))
        elif r() < (0.8 if op else 0.4):
            head = _pick(r, g["openers_operator"] if op else g["openers_citizen"])

        clauses = []
        if (profile and r() < 0.8) or r() < 0.3:
            clauses.append(fmt(_pick(r, g["intros_operator"] if op else g["intros_citizen"]), S))
        bg = None
        if profile and r() < (0.8 if long_ else 0.45):
            bg = fmt(_pick(r, g["backgrounds"]), S)
            if r() < 0.5:
                clauses.append(bg)
                bg = None
        clauses.append(prob)
        if profile and not person and r() < 0.35:
            clauses.append(fmt(_pick(r, g["nearby"]), S))
        if profile and not person and not question and r() < 0.3:
            clauses.append(_pick(r, g["frequency"]))
        if not question and r() < (0.25 if profile == 0 else 0.55):
            clauses.append(fmt(_pick(r, g["durations"]), S))
        sents.append("，".join(clauses))
        if bg:
            sents.append(bg)

        seen = set(clauses)
        if profile:
            nd = (
                2 + int(r() * 3) if profile == 1 else (4 + int(r() * 4) if profile == 2 else 7 + int(r() * 6))
            )
            dets = []
            for _ in range(nd):
                y = r()
                if y < 1.0 - p_nb - 0.12 and cat.details:
                    d = _pick(r, cat.details)
                elif y < 1.0 - 0.12 and self.detail_nb[cat_i]:
                    d = _pick(r, self.cats[_pick(r, self.detail_nb[cat_i])].details)
                else:
                    d = _pick(r, fillers)
                d = fmt(d, S)
                if d not in seen:
                    seen.add(d)
                    dets.append(d)
            if r() < 0.65 and cat.effects:
                dets.append(_pick(r, cat.effects))
            # split the details over one or two sentences
            if len(dets) > 2 and r() < 0.6:
                k = 1 + int(r() * (len(dets) - 1))
                sents.append("，".join(dets[:k]))
                sents.append("，".join(dets[k:]))
            else:
                sents.append("，".join(dets))
            if long_ and override is None and r() < 0.7:
                p2 = fmt(_pick(r, cat.problems), S)
                if p2 != prob:
                    seen.add(p2)
                    sents.append(_pick(r, ("而且", "还有，", "不光这样，", "除此之外，", "另外，")) + p2)
            if r() < (0.5 if profile == 1 else 0.85):
                sents.append(fmt(_pick(r, stories), S))
            if long_ and r() < (0.35 if profile == 2 else 0.9):
                sents.append(fmt(_pick(r, stories), S))
            if letter:
                sents.append(fmt(_pick(r, g["backgrounds"]), S))
                sents.append(fmt(_pick(r, stories), S))
                extra = [fmt(_pick(r, cat.details), S) for _ in range(2)] if cat.details else []
                extra = [e for e in dict.fromkeys(extra) if e not in seen]
                if extra:
                    sents.append("，".join(extra))
            if r() < (0.5 if profile == 1 else 0.85):
                sents.append(fmt(_pick(r, history), S))
                if letter and override is None:
                    p3 = fmt(_pick(r, cat.problems), S)
                    if p3 not in seen:
                        sents.append(_pick(r, ("再说一下，", "还有就是，", "另外，")) + p3)
                    sents.append(fmt(_pick(r, fillers), S))
            if r() < (0.3 if profile == 1 else 0.6):
                sents.append(fmt(_pick(r, fillers), S))
        # a second issue from another category (the label stays the primary one)
        if override is None and r() < (0.06 if profile == 0 else P_SECONDARY):
            if r() < 0.55 and nbs:
                oc = self.cats[_pick(r, nbs)]
            else:
                y = r()
                oc = self.cats[next(i for i, c in enumerate(self.cat_cum) if y <= c)]
            if oc is not cat:
                S3 = _Slots(base)
                S3.pools = oc.pools
                S3.r = r
                p = fmt(_pick(r, oc.problems), S3)
                sents.append(_pick(r, g["secondary_joins"]).format(p=p))
                if long_ and oc.details and r() < 0.5:
                    sents.append(fmt(_pick(r, oc.details), S3))
        if profile and r() < (0.3 if profile == 1 else 0.6):
            e = fmt(_pick(r, g["emotions"]), S)
            sents.append(e + ("？" if e[-1] in "吗办" else _pick(r, ("！", "。", "！！"))))
        op_demand = False
        if r() < 0.92:
            dm = _pick(r, cat.demands) if (r() < 0.65 and cat.demands) else _pick(r, g["demands"])
            if op and r() < 0.7 and dm[:1] in "请希要建":
                dm = "来电人" + ("希望" + dm[1:] if dm[0] == "请" else dm)
                op_demand = True
            sents.append(dm)
        if letter:
            d2 = _pick(r, g["demands"])
            sents.append(_pick(r, ("同时", "也", "最后，", "")) + d2)
        if long_ and r() < (0.5 if profile == 2 else 0.9):
            sents.append(fmt(_pick(r, g["closings_long"]), S))
        if pii_phone:
            num = _format_mobile(r, _mobile(r)) if pii_phone == 1 else _landline(r)
            sents.append(_pick(r, g["pii_phone_operator"] if op else g["pii_phone"]).format(phone=num))
        if pii_id:
            sents.append(_pick(r, g["pii_id_operator"] if op else g["pii_id"]).format(idno=_id_number(r)))

        parts = []
        done = set()
        for s in sents:
            if not s or s in done:
                continue
            done.add(s)
            parts.append(s if s[-1] in "！？。" else s + "。")
        text = head + "".join(parts)
        if r() < (0.5 if op else 0.2):
            if not op:
                text += _pick(r, g["closings"])
            elif not op_demand:
                text += _pick(r, g["closings_operator"])
        while len(text) < 20:
            text += _pick(r, g["demands"]) + "。"
        if len(text) > 600:
            cut = text.rfind("。", 0, 600)
            text = text[: cut + 1] if cut >= 20 else text[:599] + "。"

        # title (operator summary), ~15% missing
        y = r()
        if y < 0.10:
            title = None
        elif y < 0.15:
            title = ""
        else:
            tmpl = (
                g["titles_consult"]
                if (cat.consult and override is None and r() < (0.8 if person else 0.5))
                else g["titles"]
            )
            if override is not None and r() < 0.7:
                tmpl = override["titles"]
            title = self._fmt(_pick(r, tmpl), S)
            if len(title) > 30:
                title = S["est"] + S["topic"]
                if len(title) > 30:
                    title = S["topic"]
            if len(title) < 5:
                title = "反映" + title + "问题"
        return text, title, S["est"], bld


# ---------------------------------------------------------------------------------------------
# vectorised parts


def _category_comm_probs(places: Places) -> np.ndarray:
    """P(community | category): the community weights times each category's affinity."""
    cm = places.comms
    w = cm["weight"].to_numpy()
    grp = cm["group"].to_numpy()
    vil = cm["is_village"].to_numpy()
    gi = np.select([grp == "core", grp == "urban", grp == "near"], [0, 1, 2], 3)
    out = np.empty((len(CATEGORY_CODES), len(cm)))
    for k, c in enumerate(CATEGORY_CODES):
        a = AFFINITY.get(c, (1.0, 1.0, 1.0, 1.0, 1.0))
        m = np.asarray(a[:4])[gi] * np.where(vil, a[4], 1.0)
        p = w * m
        out[k] = p / p.sum()
    return out


def _phones(rng: np.random.Generator, n: int) -> list[str]:
    pre = np.asarray(MOBILE_PREFIXES)[rng.integers(0, len(MOBILE_PREFIXES), n)]
    tail = rng.integers(0, 100_000_000, n)
    return [f"{p}{t:08d}" for p, t in zip(pre.tolist(), tail.tolist(), strict=True)]


def _hours(rng: np.random.Generator, night_share: np.ndarray) -> np.ndarray:
    """Hours for rows whose category has the given night share."""
    n = len(night_share)
    base = rng.choice(24, size=n, p=HOUR_W / HOUR_W.sum())
    night = rng.choice(24, size=n, p=NIGHT_W / NIGHT_W.sum())
    return np.where(rng.random(n) < night_share, night, base)


def _day_weights(days: list[date], holidays: bool = False) -> np.ndarray:
    w = np.array([DOW_W[d.weekday()] for d in days])
    if holidays:  # the official calendar: days off like a Sunday, 调休 like a Monday, backlog after
        from triage.hotspots.holidays import day_types

        for i, k in enumerate(day_types(list(days))):
            w[i] = {
                "holiday": DOW_W[6] * 0.8,
                "workday": DOW_W[0],
                "catchup": DOW_W[days[i].weekday()] * 1.5,
            }.get(k, w[i])
        w *= np.linspace(0.95, 1.05, len(days))
        return w / w.sum()
    for i, d in enumerate(days):
        if d.month == 10 and d.day <= 7:  # National Day holiday
            w[i] *= 0.6
        if d.month == 1 and d.day == 1:
            w[i] *= 0.6
    w *= np.linspace(0.95, 1.05, len(days))  # slight upward drift
    return w / w.sum()


# ---------------------------------------------------------------------------------------------
# the public function


def generate_tickets(
    n: int,
    seed: int = 0,
    *,
    start: date | None = None,
    end: date | None = None,
    labeled: bool = True,
    surges: bool = True,
    events: bool = True,
    id_prefix: str = "BJ",
    org_cases: int = 0,
    holidays: bool = False,
) -> SynthResult:
    """Generate ``n`` synthetic hotline tickets (same seed => byte-identical output).

    Columns: ticket_id, received_at ("YYYY-MM-DD HH:MM:SS", naive Asia/Shanghai), title, text,
    address, district, street, community, channel, caller_phone, lat, lon (float, NaN when absent)
    and, only when ``labeled``: category, true_street_code, true_community_code.

    The default period is the 42 days ending 2026-11-20.  ``surges`` injects 3-5 one-day
    street x category bursts (8-25 extra tickets each); ``events`` injects 4-6 repeated complaints
    about one place (10-60 tickets over 1-4 weeks, one community, repeat callers).  When ``n`` is
    too small for these sizes they are scaled down to at most ~30 % of ``n`` (none below n=60).
    The ground truth is in ``SynthResult.truth``.

    ``org_cases`` (default 0: outputs unchanged) adds that many organisation cases on top of the
    ``n`` tickets: 15-30 callers from at least 3 districts reporting one lending platform / company
    (非法集资, 诈骗, 退款) in different words over the last 2 weeks, ids ``{id_prefix}C…``, truth in
    ``truth["org_cases"]`` (org name, ticket ids, districts). ``holidays`` (default False) shapes the
    daily volume on the official calendar (days off, 调休 working days, the catch-up after a break).
    """
    n = int(n)
    if n < 0:
        raise ValueError("n must be >= 0")
    if end is None:
        end = (start + timedelta(days=DEFAULT_DAYS - 1)) if start is not None else DEFAULT_END
    if start is None:
        start = end - timedelta(days=DEFAULT_DAYS - 1)
    if isinstance(start, datetime):
        start = start.date()
    if isinstance(end, datetime):
        end = end.date()
    if end < start:
        raise ValueError("end must not be before start")
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    nd = len(days)

    places = load_places()
    b = _builder()
    st, cm = places.streets, places.comms
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 20261120]))
    ncat = len(CATEGORY_CODES)
    cat_night = np.array([b.cats[k].night for k in range(ncat)])

    # ---- plan injections -------------------------------------------------------------------
    surge_plan, event_plan = [], []
    if surges and n >= 60:
        specs = b.surge_specs
        sw = np.array([s.get("weight", 1) for s in specs], float)
        k_s = int(rng.integers(3, 6))
        used = set()
        streetp = st["weight"].to_numpy() ** 0.7
        streetp /= streetp.sum()
        themes = rng.choice(len(specs), size=min(k_s, len(specs)), replace=False, p=sw / sw.sum())
        early = False  # at most one surge before the last 7 days; the first is on the last day
        for j, t in enumerate(themes.tolist()):
            spec = specs[t]
            si = int(rng.choice(len(st), p=streetp))
            if j == 0:
                di = nd - 1
            elif early or rng.random() < 0.75:
                di = nd - 1 - int(rng.integers(0, min(7, nd)))
            else:
                early = True
                di = max(0, nd - 1 - int(rng.integers(7, min(21, max(8, nd)))))
            key = (si, spec["category"], di)
            if key in used:
                continue
            used.add(key)
            surge_plan.append({"spec": spec, "si": si, "di": di, "count": int(rng.integers(8, 26))})
    if events and n >= 60:
        specs = b.event_specs
        k_e = int(rng.integers(4, 7))
        chosen = rng.choice(len(specs), size=min(k_e, len(specs)), replace=False)
        resid = (~cm["is_village"].to_numpy()) & (cm["weight"].to_numpy() > 0)
        cp = np.where(resid, cm["weight"].to_numpy(), 0.0)
        cp /= cp.sum()
        used_c = set()
        for j in chosen.tolist():
            spec = specs[j]
            ci = int(rng.choice(len(cm), p=cp))
            while ci in used_c:
                ci = int(rng.choice(len(cm), p=cp))
            used_c.add(ci)
            length = int(rng.integers(7, 29))
            length = min(length, nd)
            last = nd - 1 - int(rng.integers(0, max(1, min(10, nd - length + 1))))
            first = max(0, last - length + 1)
            event_plan.append(
                {"spec": spec, "ci": ci, "d0": first, "d1": last, "count": int(rng.integers(10, 61))}
            )
    total_inj = sum(p["count"] for p in surge_plan) + sum(p["count"] for p in event_plan)
    if total_inj > 0.3 * n:
        f = 0.3 * n / total_inj
        for p in surge_plan + event_plan:
            p["count"] = max(2, int(p["count"] * f))
        total_inj = sum(p["count"] for p in surge_plan) + sum(p["count"] for p in event_plan)
    nb = n - total_inj

    # ---- base tickets: category, place, time -----------------------------------------------
    cw = np.array([CATEGORY_WEIGHTS[c] for c in CATEGORY_CODES])
    cat = rng.choice(ncat, size=nb, p=cw / cw.sum())
    comm = np.empty(nb, dtype=np.int64)
    probs = _category_comm_probs(places)
    for k in range(ncat):
        idx = np.flatnonzero(cat == k)
        if len(idx):
            comm[idx] = rng.choice(len(cm), size=len(idx), p=probs[k])
    day = rng.choice(nd, size=nb, p=_day_weights(days, holidays))
    hour = _hours(rng, cat_night[cat])

    # frequent callers: a small pool of numbers that call again and again from home
    pool_n = max(5, nb // 250)
    pool_phone = _phones(rng, pool_n)
    pool_home = rng.choice(len(cm), size=pool_n, p=cm["weight"].to_numpy())
    freq = np.flatnonzero(rng.random(nb) < 0.06)
    zipf = 1.0 / np.arange(1, pool_n + 1) ** 0.8
    who = rng.choice(pool_n, size=len(freq), p=zipf / zipf.sum())
    comm[freq] = pool_home[who]
    phone: list[str | None] = _phones(rng, nb)
    for i, w in zip(freq.tolist(), who.tolist(), strict=True):
        phone[i] = pool_phone[w]

    special = [-1] * nb  # index into override list for injected rows
    overrides: list[dict] = []
    inj_cat, inj_comm, inj_day, inj_hour, inj_phone, inj_special = [], [], [], [], [], []
    surge_rows: list[list[int]] = []
    event_rows: list[list[int]] = []
    comm_street = cm["street_idx"].to_numpy()
    for p in surge_plan:
        spec = p["spec"]
        k = b.cat_index[spec["category"]]
        in_street = np.flatnonzero((comm_street == p["si"]) & (probs[k] > 0))
        if len(in_street) == 0:
            in_street = np.flatnonzero(comm_street == p["si"])
        pw = cm["weight"].to_numpy()[in_street] + 1e-12
        focus = in_street[
            rng.choice(len(in_street), size=min(2, len(in_street)), replace=False, p=pw / pw.sum())
        ]
        rows = []
        for _ in range(p["count"]):
            ci = int(rng.choice(focus)) if rng.random() < 0.7 else int(rng.choice(in_street, p=pw / pw.sum()))
            overrides.append({"kind": "surge", "spec": spec})
            rows.append(nb + len(inj_cat))
            inj_cat.append(k)
            inj_comm.append(ci)
            inj_day.append(p["di"])
            inj_hour.append(int(rng.choice(spec["hours"])))
            inj_phone.append(_phones(rng, 1)[0] if rng.random() < 0.9 else None)
            inj_special.append(len(overrides) - 1)
        surge_rows.append(rows)
    for p in event_plan:
        spec = p["spec"]
        k = b.cat_index[spec["category"]]
        ci = p["ci"]
        est_list = places.comms.at[ci, "estates"]
        est = est_list[0]
        fill = {
            "est": est,
            "bldno": str(int(rng.integers(1, 25))),
            "roomno": f"{int(rng.integers(1, 20))}0{int(rng.integers(1, 5))}",
        }
        if spec.get("shopnames"):
            fill["shopname"] = spec["shopnames"][int(rng.integers(len(spec["shopnames"])))]
        place = spec["place"].format(**fill)
        m_rep = int(rng.integers(2, 5))
        rep_phones = _phones(rng, m_rep)
        rep_calls = rng.integers(2, 6, size=m_rep)
        callers: list[str | None] = [
            ph for ph, c in zip(rep_phones, rep_calls.tolist(), strict=True) for _ in range(c)
        ]
        callers = callers[: p["count"]]
        while len(callers) < p["count"]:
            callers.append(_phones(rng, 1)[0] if rng.random() < 0.88 else None)
        order = rng.permutation(len(callers))
        callers = [callers[i] for i in order.tolist()]
        p["place"] = place
        p["repeat_callers"] = sorted(set(rep_phones))
        titles = (
            [f"{place}{iss}" for iss in spec["issues"]]
            + [f"反映{place}{iss}问题" for iss in spec["issues"]]
            + [f"再次反映{place}{spec['issues'][0]}"]
        )
        titles = [t if len(t) <= 30 else place[:24] + spec["issues"][0][:6] for t in titles]
        ov_slots = {"place": place, "est": est, "topic": spec["issues"][0]}
        night = float(spec.get("night", 0.05))
        rows = []
        for j in range(p["count"]):
            overrides.append(
                {
                    "kind": "event",
                    "problems": spec["problems"],
                    "topics": spec["issues"],
                    "titles": titles,
                    "slots": ov_slots,
                }
            )
            rows.append(nb + len(inj_cat))
            inj_cat.append(k)
            inj_comm.append(ci)
            inj_day.append(int(rng.integers(p["d0"], p["d1"] + 1)))
            inj_hour.append(int(_hours(rng, np.array([night]))[0]))
            inj_phone.append(callers[j])
            inj_special.append(len(overrides) - 1)
        event_rows.append(rows)
    # surge overrides: a fixed theme per surge, varied wording
    for o in overrides:
        if o["kind"] == "surge":
            spec = o["spec"]
            o.update(
                {
                    "problems": spec["problems"],
                    "topics": spec["topics"],
                    "titles": [
                        "{est}{topic}",
                        "反映{est}{topic}问题",
                        "{street}{est}{topic}",
                        "{topic}",
                        "{dist}{street_full}{topic}",
                    ],
                    "slots": {},
                }
            )

    cat = np.concatenate([cat, np.asarray(inj_cat, dtype=np.int64)])
    comm = np.concatenate([comm, np.asarray(inj_comm, dtype=np.int64)])
    day = np.concatenate([day, np.asarray(inj_day, dtype=np.int64)])
    hour = np.concatenate([hour, np.asarray(inj_hour, dtype=np.int64)])
    phone = phone + inj_phone
    special = special + inj_special
    assert len(cat) == n

    # ---- other structured columns ---------------------------------------------------------
    minute = rng.integers(0, 60, n)
    second = rng.integers(0, 60, n)
    base_s = np.datetime64(start.isoformat(), "s")
    ts = base_s + (day * 86400 + hour * 3600 + minute * 60 + second).astype("timedelta64[s]")
    chan = rng.choice(len(CHANNELS), size=n, p=CHANNEL_P)
    op = rng.random(n) < np.asarray(OPERATOR_P)[chan]
    no_phone = rng.random(n) < 0.15
    pii_kind = rng.random(n)
    pii_phone = np.where(pii_kind < 0.06, 1, np.where(pii_kind < 0.08, 2, 0))
    pii_id = rng.random(n) < 0.03
    trad = rng.random(n) < 0.05
    fullw_u = rng.random(n)
    fullw = np.zeros(n, bool)
    has_geo = rng.random(n) < 0.5
    struct = rng.random(n)
    jit = rng.normal(0.0, 0.0015, size=(n, 2))
    tiebreak = rng.random(n)
    heating_day = np.array([(d.month, d.day) >= HEATING_START or d.month < 4 for d in days])[day]
    text_seed = int(rng.integers(0, 2**63 - 1))

    # ---- texts (per row) -------------------------------------------------------------------
    texts, titles_out, addrs = _build_texts(
        b, text_seed, cat, comm, op, heating_day, pii_phone, pii_id, special, overrides
    )
    if trad.any():
        conv = _opencc()
        for i in np.flatnonzero(trad).tolist():
            texts[i] = conv.convert(texts[i])
            if titles_out[i]:
                titles_out[i] = conv.convert(titles_out[i])
            if addrs[i] and tiebreak[i] < 0.5:
                addrs[i] = conv.convert(addrs[i])
    # full-width forms: ~5 % of all rows, drawn among texts that have ASCII digits/letters to convert
    has_ascii = np.fromiter((_ASCII_ALNUM.search(t) is not None for t in texts), bool, n)
    frac = has_ascii.mean() if n else 1.0
    fullw &= has_ascii
    fullw |= has_ascii & (fullw_u < min(1.0, 0.05 / max(frac, 1e-9)))
    for i in np.flatnonzero(fullw).tolist():
        texts[i] = texts[i].translate(_FULLWIDTH)
        if titles_out[i]:
            titles_out[i] = titles_out[i].translate(_FULLWIDTH)

    # ---- assemble and sort by time -----------------------------------------------------------
    street_i = comm_street[comm]
    dist_name = st["district_name"].to_numpy()[street_i]
    street_name = st["name"].to_numpy()[street_i]
    comm_short = cm["short"].to_numpy()[comm]
    d_col = np.where(struct < 0.4, dist_name, None)
    s_col = np.where(struct < 0.3, street_name, None)
    c_col = np.where(struct < 0.22, comm_short, None)
    lat = np.where(has_geo, np.round(np.clip(cm["lat"].to_numpy()[comm] + jit[:, 0], *LAT_RANGE), 6), np.nan)
    lon = np.where(has_geo, np.round(np.clip(cm["lon"].to_numpy()[comm] + jit[:, 1], *LON_RANGE), 6), np.nan)
    phone_col = [None if no_phone[i] and special[i] < 0 else phone[i] for i in range(n)]

    order = np.lexsort((tiebreak, ts))
    ts_sorted = ts[order]
    day_sorted = day[order]
    seq = np.empty(n, dtype=np.int64)
    if n:
        starts = np.r_[0, np.flatnonzero(np.diff(day_sorted)) + 1]
        seq = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n])) + 1
    width = max(6, len(str(int(seq.max())))) if n else 6
    ts_str = np.datetime_as_string(ts_sorted, unit="s")
    ids = [
        f"{id_prefix}{t[:4]}{t[5:7]}{t[8:10]}-{s:0{width}d}"
        for t, s in zip(ts_str.tolist(), seq.tolist(), strict=True)
    ]
    received = [t.replace("T", " ") for t in ts_str.tolist()]
    o = order.tolist()

    cols = {
        "ticket_id": ids,
        "received_at": received,
        "title": [titles_out[i] for i in o],
        "text": [texts[i] for i in o],
        "address": [addrs[i] for i in o],
        "district": d_col[order].tolist(),
        "street": s_col[order].tolist(),
        "community": c_col[order].tolist(),
        "channel": np.asarray(CHANNELS, dtype=object)[chan[order]].tolist(),
        "caller_phone": [phone_col[i] for i in o],
    }
    df = pd.DataFrame({k: pd.Series(v, dtype="str") for k, v in cols.items()})
    df["lat"] = lat[order].astype("float64")
    df["lon"] = lon[order].astype("float64")
    if labeled:
        df["category"] = pd.Series(np.asarray(CATEGORY_CODES, dtype=object)[cat[order]].tolist(), dtype="str")
        df["true_street_code"] = pd.Series(st["code"].to_numpy()[street_i][order].tolist(), dtype="str")
        df["true_community_code"] = pd.Series(cm["code"].to_numpy()[comm][order].tolist(), dtype="str")

    # ---- truth -----------------------------------------------------------------------------
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.arange(n)
    truth = {
        "seed": int(seed),
        "n": n,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "surges": [],
        "events": [],
    }
    for p, rows in zip(surge_plan, surge_rows, strict=True):
        truth["surges"].append(
            {
                "street_code": st.at[p["si"], "code"],
                "street_name": st.at[p["si"], "name"],
                "district_name": st.at[p["si"], "district_name"],
                "category": p["spec"]["category"],
                "day": days[p["di"]].isoformat(),
                "extra_count": len(rows),
                "theme": p["spec"]["key"],
                "ticket_ids": sorted(ids[pos[r]] for r in rows),
            }
        )
    for p, rows in zip(event_plan, event_rows, strict=True):
        ci = p["ci"]
        truth["events"].append(
            {
                "event_key": f"{p['spec']['key']}-{cm.at[ci, 'code']}",
                "street_code": st.at[int(cm.at[ci, "street_idx"]), "code"],
                "community_code": cm.at[ci, "code"],
                "community_name": cm.at[ci, "short"],
                "place_name": p["place"],
                "category": p["spec"]["category"],
                "first_day": days[p["d0"]].isoformat(),
                "last_day": days[p["d1"]].isoformat(),
                "ticket_ids": sorted(ids[pos[r]] for r in rows),
                "repeat_callers": p["repeat_callers"],
            }
        )
    if org_cases:
        df, truth["org_cases"] = _add_org_cases(df, org_cases, seed, days, places, id_prefix, labeled)
    return SynthResult(tickets=df, truth=truth)


_ORG_BRANDS = ("鑫利贷", "融汇宝", "恒信财富", "金诚优选", "安信通")
_ORG_TITLES = (
    "{b}平台非法集资",
    "举报{b}诈骗",
    "{b}公司不给退款",
    "反映{b}平台逾期不兑付",
    "{b}投资管理有限公司跑路",
    "要求查处{b}公司",
)
_ORG_TEXTS = (
    "我在{b}平台投了{amt}万元，现在无法提现，客服联系不上，怀疑是非法集资，请相关部门尽快处理。",
    "{b}投资管理有限公司以高息为诱饵吸收资金，我{month}月投入{amt}万元至今未兑付，请求立案调查。",
    "{b}公司的业务员上门推销理财，说保本保息，现在钱拿不回来，要求退款。",
    "反映{b}平台涉嫌诈骗，我们很多投资人的本金被套，公司已经人去楼空。",
    "家里老人被{b}的人骗去投资{amt}万，现在对方跑路了，请政府帮助追回。",
)


def _add_org_cases(df, k, seed, days, places, id_prefix, labeled):
    """Organisation cases spread over districts (see ``generate_tickets``); a separate random stream
    so the other tickets stay as they are."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 20261121]))
    st, cm = places.streets, places.comms
    truth, rows = [], []
    for j in range(int(k)):
        brand = _ORG_BRANDS[(j + int(rng.integers(len(_ORG_BRANDS)))) % len(_ORG_BRANDS)]
        n = int(rng.integers(15, 31))
        dists = rng.choice(
            st["district_name"].unique(), size=min(4, st["district_name"].nunique()), replace=False
        )
        ids = []
        for i in range(n):
            dist = dists[i % len(dists)]
            ci = int(
                rng.choice(
                    np.flatnonzero(st["district_name"].to_numpy()[cm["street_idx"].to_numpy()] == dist)
                )
            )
            si = int(cm.at[ci, "street_idx"])
            day = days[len(days) - 1 - int(rng.integers(0, min(14, len(days))))]
            at = f"{day.isoformat()} {int(rng.integers(8, 22)):02d}:{int(rng.integers(60)):02d}:{int(rng.integers(60)):02d}"
            tid = f"{id_prefix}C{day.strftime('%Y%m%d')}-{j:02d}{i:04d}"
            fill = {"b": brand, "amt": int(rng.integers(2, 50)), "month": int(rng.integers(1, 12))}
            row = {"ticket_id": tid, "received_at": at,
                   "title": _ORG_TITLES[int(rng.integers(len(_ORG_TITLES)))].format(**fill),
                   "text": _ORG_TEXTS[int(rng.integers(len(_ORG_TEXTS)))].format(**fill),
                   "address": f"{dist}{cm.at[ci, 'estates'][0]}", "district": dist, "street": None,
                   "community": None, "channel": "电话", "caller_phone": _phones(rng, 1)[0],
                   "lat": np.nan, "lon": np.nan}  # fmt: skip
            if labeled:
                row.update({"category": "consumer_rights", "true_street_code": st.at[si, "code"],
                            "true_community_code": cm.at[ci, "code"]})  # fmt: skip
            rows.append(row)
            ids.append(tid)
        truth.append({"org": brand, "category": "consumer_rights", "ticket_ids": sorted(ids),
                      "districts": sorted(map(str, dists))})  # fmt: skip
    add = pd.DataFrame(rows)[list(df.columns)].astype(df.dtypes.to_dict())
    out = pd.concat([df, add], ignore_index=True)
    out = out.sort_values(["received_at", "ticket_id"], kind="stable").reset_index(drop=True)
    return out, truth


def _build_texts(
    b: _Builder, text_seed: int, cat, comm, op, heating_day, pii_phone, pii_id, special, overrides
):
    rnd = random.Random(text_seed)
    r = rnd.random
    texts, titles, addrs = [], [], []
    tt = b.text_and_title
    addr = b.address
    for c, ci, o, h, pp, pid, sp in zip(
        cat.tolist(),
        comm.tolist(),
        op.tolist(),
        heating_day.tolist(),
        pii_phone.tolist(),
        pii_id.tolist(),
        special,
        strict=True,
    ):
        text, title, est, bld = tt(r, c, ci, o, h, pp, pid, overrides[sp] if sp >= 0 else None)
        texts.append(text)
        titles.append(title)
        addrs.append(addr(r, ci, est, bld))
    return texts, titles, addrs


@lru_cache(maxsize=1)
def _builder() -> _Builder:
    return _Builder(load_places())


@lru_cache(maxsize=1)
def _opencc():
    import opencc

    return opencc.OpenCC("s2t")
