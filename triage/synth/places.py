"""Places for the synthetic ticket generator: the real Beijing gazetteer plus invented detail.

Street and community names come from ``taxonomy/gazetteer`` (real administrative units).  On top of
them this module derives, deterministically (independent of the generator's seed):

* the names people actually say: "沙河地区" -> "沙河镇"/"沙河"; "多福巷社区居委会" -> "多福巷社区";
  "七里渠南村委会" -> "七里渠南村";
* invented estate names attached to residential communities ("多福巷小区", "望京西园三区");
* per-street and per-community weights (how many tickets a place gets), with the large suburban
  towns (回龙观, 天通苑, 沙河, 北七家, 长阳, 新村, 望京 ...) heavier;
* SYNTHETIC coordinates.  The gazetteer has no coordinates, so every street gets a pseudo-centroid
  drawn inside a rough box for its district (urban districts inside 39.85-40.05 N / 116.25-116.55 E,
  suburbs around them, all inside Beijing's bounding box 39.45-40.95 N / 115.45-117.45 E) and every
  community is jittered about 1 km around it.  These points are NOT real locations; they only give
  the product something geographically plausible to cluster on.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

LAT_RANGE = (39.45, 40.95)
LON_RANGE = (115.45, 117.45)

# (lat_lo, lat_hi, lon_lo, lon_hi): rough boxes, synthetic.
DISTRICT_BOX = {
    "东城区": (39.87, 39.96, 116.39, 116.45),
    "西城区": (39.87, 39.95, 116.33, 116.39),
    "朝阳区": (39.86, 40.04, 116.43, 116.55),
    "海淀区": (39.94, 40.05, 116.25, 116.34),
    "丰台区": (39.85, 39.89, 116.25, 116.42),
    "石景山区": (39.89, 39.95, 116.25, 116.29),
    "昌平区": (40.08, 40.30, 116.10, 116.45),
    "大兴区": (39.55, 39.80, 116.25, 116.55),
    "通州区": (39.75, 39.95, 116.60, 116.85),
    "顺义区": (40.05, 40.25, 116.55, 116.85),
    "房山区": (39.60, 39.80, 115.75, 116.20),
    "门头沟区": (39.88, 40.05, 115.70, 116.10),
    "怀柔区": (40.30, 40.75, 116.45, 116.70),
    "密云区": (40.35, 40.70, 116.75, 117.15),
    "平谷区": (40.08, 40.30, 117.00, 117.30),
    "延庆区": (40.40, 40.60, 115.85, 116.25),
}
CORE = {"东城区", "西城区"}
URBAN = {"朝阳区", "海淀区", "丰台区", "石景山区"}
NEAR = {"昌平区", "大兴区", "通州区", "顺义区", "房山区"}
# everything else is "far" (门头沟 怀柔 密云 平谷 延庆)

# Streets that get many more tickets (big suburban towns; task 24 names 长阳 沙河 北七家 新村).
STREET_BOOST = {
    "回龙观街道": 4.0,
    "天通苑北街道": 3.5,
    "天通苑南街道": 3.0,
    "沙河地区": 3.5,
    "北七家镇": 3.5,
    "长阳镇": 3.0,
    "新村街道": 2.5,
    "望京街道": 3.0,
    "霍营街道": 2.0,
    "东小口地区": 2.5,
    "史各庄街道": 2.0,
    "黄村地区": 1.8,
    "西红门地区": 1.8,
    "旧宫地区": 1.8,
    "亦庄地区": 1.5,
    "梨园镇": 1.8,
    "永顺镇": 1.6,
    "宋庄镇": 1.4,
    "常营地区": 1.5,
    "东坝地区": 1.5,
    "青云店镇": 1.2,
    "良乡地区": 1.4,
    "拱辰街道": 1.4,
    "卢沟桥地区": 1.6,
    "花乡地区": 1.4,
    "南苑街道": 1.3,
    "清河街道": 1.4,
    "上地街道": 1.3,
    "双井街道": 1.3,
    "潘家园街道": 1.3,
}
DISTRICT_GROUP_W = {"core": 1.0, "urban": 1.2, "near": 1.0, "far": 0.35}
STREET_TYPE_W = {"街道": 1.0, "地区办事处": 1.3, "镇": 0.8, "乡": 0.3, "类似乡级单位": 0.08}

_VIRTUAL = re.compile(
    r"虚拟|工作站|治理委员会|股份经济合作社|工业区|工业园|开发区|产业园|工作区|产业基地|场区"
)
_COMM_SUFFIX = re.compile(r"(社区居民委员会|社区居民居委会|社区居委会|居民委员会|居委会|社区)$")
_VILLAGE_SUFFIX = re.compile(r"(村民委员会|村委会|委员会)$")
_ESTATE_END = re.compile(
    r"(里|园|苑|区|城|院|庭|居|墅|寓|湾|府|邸|坊|轩|阁|汇|村|庄园|花园|家园|公寓|小区|新村|别墅|嘉园|小镇|大院|宿舍|号院)$"
)
_ORDINAL = re.compile(r"第([一二三四五六七八九十]+)$")


def district_group(name: str) -> str:
    if name in CORE:
        return "core"
    if name in URBAN:
        return "urban"
    if name in NEAR:
        return "near"
    return "far"


def _stable_rng(key: str) -> np.random.Generator:
    """A generator that depends only on ``key`` (not on the caller's seed)."""
    return np.random.default_rng(zlib.crc32(key.encode("utf-8")))


def street_spoken_names(name: str, stype: str, district: str) -> list[str]:
    """What callers call a street: official name first, then colloquial forms."""
    out = [name]
    for suf in ("街道", "地区", "镇", "乡"):
        if name.endswith(suf):
            base = name[: -len(suf)]
            if suf == "地区":
                # 地区办事处: in urban districts they were 乡 (来广营乡), in the suburbs 镇 (沙河镇)
                out.append(base + ("乡" if district_group(district) in ("core", "urban") else "镇"))
            if len(base) >= 2:
                out.append(base)
            break
    return out


def community_short(name: str, ctype: str) -> tuple[str, bool]:
    """('多福巷社区', False) for residents' committees, ('七里渠南村', True) for villages."""
    if "村" in ctype or _VILLAGE_SUFFIX.search(name) and not _COMM_SUFFIX.search(name):
        base = _VILLAGE_SUFFIX.sub("", name)
        base = re.sub(r"村村$", "村", base)
        if not base.endswith("村"):
            base += "村"
        return base, True
    base = _COMM_SUFFIX.sub("", name)
    base = re.sub(r"(居民|居委)$", "", base) or name
    return base + "社区", False


def estate_names(short: str, is_village: bool, code: str) -> list[str]:
    """Invented estate names attached to a real community (deterministic per community)."""
    if is_village:
        return [short]
    base = short[:-2] if short.endswith("社区") else short
    m = _ORDINAL.search(base)
    if m:  # 北街家园第一 -> 北街家园一区
        stem = base[: m.start()]
        base = stem + m.group(1) + "区" if len(stem) >= 2 else base
    rng = _stable_rng("estate:" + code)
    names: list[str] = []
    if _ESTATE_END.search(base) and len(base) >= 3:
        names.append(base)
    else:
        names.append(base + ["小区", "家园", "小区", "院", "南里", "北里", "小区"][int(rng.integers(7))])
    if rng.random() < 0.45:
        names.append(f"{base}{int(rng.integers(1, 40))}号院")
    if rng.random() < 0.25:
        names.append(base + ["东区", "西区", "南区", "北区", "嘉园", "公寓"][int(rng.integers(6))])
    return names


@dataclass
class Places:
    streets: pd.DataFrame  # code, name, district_name, type, group, weight, lat, lon, spoken (list)
    comms: pd.DataFrame  # code, street_idx, short, is_village, weight, lat, lon, estates (list)


def _gazetteer_dir() -> Path:
    here = Path(__file__).resolve().parents[2] / "taxonomy" / "gazetteer"
    try:
        from triage.config import get_settings

        cand = Path(get_settings().taxonomy_dir) / "gazetteer"
        if (cand / "beijing_communities.csv").exists():
            return cand
    except Exception:  # pragma: no cover - settings unavailable
        pass
    return here


@lru_cache(maxsize=2)
def load_places(gazetteer_dir: str | None = None) -> Places:
    gdir = Path(gazetteer_dir) if gazetteer_dir else _gazetteer_dir()
    st = pd.read_csv(gdir / "beijing_streets.csv", dtype=str).sort_values("code").reset_index(drop=True)
    cm = pd.read_csv(gdir / "beijing_communities.csv", dtype=str).sort_values("code").reset_index(drop=True)

    st["group"] = st["district_name"].map(district_group)
    n_comm = cm.groupby("street_code").size()
    w = []
    lat = []
    lon = []
    for code, name, dist, stype, grp in zip(
        st.code, st.name, st.district_name, st.type, st.group, strict=True
    ):
        rng = _stable_rng("street:" + code)
        base = DISTRICT_GROUP_W[grp] * STREET_TYPE_W.get(stype, 0.5)
        base *= float(np.sqrt(n_comm.get(code, 1))) * float(rng.lognormal(0.0, 0.45))
        base *= STREET_BOOST.get(name, 1.0)
        w.append(base)
        la0, la1, lo0, lo1 = DISTRICT_BOX.get(dist, (39.85, 40.05, 116.25, 116.55))
        lat.append(la0 + (la1 - la0) * float(rng.random()))
        lon.append(lo0 + (lo1 - lo0) * float(rng.random()))
    st["weight"] = np.asarray(w) / np.sum(w)
    st["lat"] = lat
    st["lon"] = lon
    st["spoken"] = [
        street_spoken_names(n, t, d) for n, t, d in zip(st.name, st.type, st.district_name, strict=True)
    ]

    sidx = {c: i for i, c in enumerate(st.code)}
    cm["street_idx"] = cm["street_code"].map(sidx).astype(int)
    shorts, villages, estates, cw, clat, clon = [], [], [], [], [], []
    virtual_only = set()
    is_virtual = cm["name"].str.contains(_VIRTUAL)
    for scode, grp in cm.groupby("street_code"):
        if is_virtual[grp.index].all():
            virtual_only.add(scode)
    for i, (code, name, ctype, scode) in enumerate(
        zip(cm.code, cm.name, cm.type, cm.street_code, strict=True)
    ):
        short, vil = community_short(name, ctype)
        shorts.append(short)
        villages.append(vil)
        estates.append(estate_names(short, vil, code))
        rng = _stable_rng("comm:" + code)
        g = st.at[sidx[scode], "group"]
        wv = 1.0
        if vil:
            wv = {"core": 0.3, "urban": 0.35, "near": 0.55, "far": 0.8}[g]
        if is_virtual.iat[i]:
            wv = 1.0 if scode in virtual_only else 0.0
        cw.append(wv * float(rng.lognormal(0.0, 0.6)))
        clat.append(st.at[sidx[scode], "lat"] + float(rng.normal(0, 0.008)))
        clon.append(st.at[sidx[scode], "lon"] + float(rng.normal(0, 0.010)))
    cm["short"] = shorts
    cm["is_village"] = villages
    cm["estates"] = estates
    cw = np.asarray(cw)
    # normalise within street, then multiply by street weight -> global probability of a ticket
    ssum = np.bincount(cm["street_idx"].to_numpy(), weights=cw, minlength=len(st))
    cm["weight"] = (
        cw / ssum[cm["street_idx"].to_numpy()] * st["weight"].to_numpy()[cm["street_idx"].to_numpy()]
    )
    cm["lat"] = np.clip(clat, *LAT_RANGE)
    cm["lon"] = np.clip(clon, *LON_RANGE)
    cm["group"] = st["group"].to_numpy()[cm["street_idx"].to_numpy()]
    return Places(streets=st, comms=cm)
