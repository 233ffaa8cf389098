"""Event clustering: tickets about the same specific place and problem, grouped into events.

Works on any ticket table (a file or the database). Two tickets are linked when they fall within
``window_days`` of each other (and in the same block, e.g. street, when blocks are given) and either

* name the same place (a named estate, school, company … extracted by suffix rules, no gazetteer)
  and their texts are at least ``place_sim`` similar, or
* their texts are at least ``text_sim`` similar (cosine of character 2–3-gram TF-IDF),

and events are the connected components of that graph (size ≥ ``min_size``). The heat score is
defined in docs/hotspots.md and :func:`heat_score`.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from triage.hotspots.names import extend_to_alias, generic_head, generic_name, is_fragment, word_start

# named places: a short name followed by a place-type suffix (longest suffixes first)
_SUFFIXES = (
    "小区|社区|花园|家园|公寓|新城|新村|山庄|广场|大厦|大楼|中心|学院|大学|中学|小学|幼儿园|学校|医院|公司|集团|"
    "市场|商场|超市|酒店|宾馆|饭店|饭庄|餐厅|酒楼|KTV|网吧|工地|项目|搅拌站|加油站|车站|公园|"
    "苑|园|院|楼|城|府|湾|庭|阁|里|村|厂"
)
_PLACE_RE = re.compile(r"([A-Za-z0-9\u4e00-\u9fff]{1,10}?(?:" + _SUFFIXES + r"))")
# where a place name cannot start: everything up to the last of these is dropped
_CUT_RE = re.compile(
    r".*(?:市|区|县|镇|乡|街道|路|街|道|号|省|在|住|于|的|是|了|和|与|及|对|向|给|从|到|为|被|把|"
    r"我|你|他|她|们|该|本|此|这|那|个|位|反映|关于|请|问|投诉|举报|希望|要求|附近|旁边|门口|对面|"
    r"一|二|三|四|五|六|七|八|九|十|每|所|个|家|上|下|去|来|据说|并且|不准|找|次|几|某|老|离|隔壁|群|时间|影响|说|报|过|称|，|,|。)"
)
_WEAK_CUT_RE = re.compile(
    r".*(?:市|区|县|镇|乡|在|住|于|的|是|了|和|与|及|对|向|给|从|到|为|被|把|我|你|他|她|们|该|本|此|这|那|个|位|"
    r"反映|关于|请|问|投诉|举报|附近|旁边|门口|对面|每|所|家|上|下|去|来|，|,|。)"
)
_GENERIC = {
    "小区",
    "花园",
    "家园",
    "公寓",
    "新城",
    "新村",
    "广场",
    "大厦",
    "中心",
    "学院",
    "大学",
    "中学",
    "小学",
    "幼儿园",
    "学校",
    "医院",
    "公司",
    "集团",
    "市场",
    "商场",
    "超市",
    "酒店",
    "工地",
    "项目",
    "公园",
    "物业公司",
    "开发商",
    "城市",
    "县城",
    "进城",
    "城区",
    "老城",
    "全城",
    "农村",
    "乡村",
    "村里",
    "村委",
    "物业",
    "居",
    "里",
    "城",
    "园",
    "苑",
    "村",
    "厂",
    "府",
    "湾",
    "庭",
    "阁",
    "家里",
    "心里",
    "这里",
    "那里",
    "哪里",
    "群里",
    "夜里",
    "楼里",
    "院里",
    "城里",
    "邻居",
    "城管",
    "工厂",
    "社区",
    "车站",
    "加油站",
    "网吧",
    "宾馆",
    "饭店",
    "餐厅",
    "房地产公司",
    "培训学校",
    "政府",
    "市政府",
    "区政府",
    "有限公司",
    "限公司",
    "股份有限公司",
    "责任公司",
    "医疗中心",
    "服务中心",
    "政务中心",
    "运营公司",
    "施工项目",
    "建设项目",
    "安置房项目",
    "住宅",
    "住宅小区",
    "住宅楼",
    "垃圾楼",
    "垃圾站",
    "垃圾房",
    "村容村",
    "居民楼",
    "公里",
}
_NUMBERED = re.compile(
    r"^[0-9零一二三四五六七八九十百A-Za-z#\-]+号?(楼|院|里|村)$"
)  # "6号楼": a building, not a place
_TRAILING = re.compile(r"(小区|社区|家园)$")


# a suffix may be followed by a second one ("广华新城东小区", "魅力之城小区"): take the whole
_SUFFIX_RE = re.compile(
    r"(?:" + _SUFFIXES + r")(?:[\u4e00-\u9fff]{0,2}?(?:小区|社区|花园|家园|公寓|里|苑|园))?"
)
_CJK_TAIL = re.compile(r"[A-Za-z0-9\u4e00-\u9fff]{1,10}$")


# characters a name's decision never looks past (no community alias holds one; names are made of
# letters, digits and CJK): a window is cut after the last of them (:func:`_window_cut`); not a
# newline: "$" of a name's tail also matches before one
_SEPARATORS = " \t\r\u3000，。！？；：,.!?;:…“”\"'‘’《》<>【】[]{}/|~～"
_MISSING = object()


@lru_cache(maxsize=1)
def _separators() -> str:
    from triage.hotspots.names import community_aliases

    used = set("".join(community_aliases()))
    return re.escape("".join(c for c in _SEPARATORS if c not in used))


@lru_cache(maxsize=1)
def _window_cut() -> re.Pattern[str]:
    return re.compile(r".*[" + _separators() + r"]", re.S)


@lru_cache(maxsize=1)
def _segment_split() -> re.Pattern[str]:
    return re.compile(r"[" + _separators() + r"]+")


def extract_places(text: str, memo: dict | None = None) -> list[str]:
    """Named places in free text, as matching keys: '丽发新城小区' and '丽发新城' give the same key.

    Finds each place-type suffix, takes up to 10 name characters before it, and drops everything up
    to the last administrative unit, verb, pronoun or particle (no gazetteer needed).

    ``memo`` (a dict the caller keeps for a batch of texts) holds the names of each text segment
    between separators and the decision of each window; without it a bounded module cache is used.
    Nothing a decision reads crosses a separator (see :func:`_segment_places`), so a segment's names
    are the same in every text."""
    text = text or ""
    found = _segment_places(text, None) if memo is None else _part_places(text, memo)
    return _canonical(found)


def _part_places(text: str, memo: dict) -> tuple[str, ...]:
    """The keys of each segment of ``text`` one after the other (repeats kept)."""
    found: tuple[str, ...] = ()
    for seg in _segment_split().split(text):
        r = memo.get(seg)
        if r is None:
            r = memo[seg] = _segment_places(seg, memo)
        if r:
            found += r
    return found


def _shared_part(text: str, memo: dict) -> tuple[str, ...]:
    """:func:`_part_places` of a part many rows share (a title, an address), memoised whole (a part
    without separators is one segment: the same keys under the same memo key)."""
    r = memo.get(text)
    if r is None:
        r = memo[text] = _part_places(text, memo)
    return r


def _canonical(found) -> list[str]:
    """A text's place keys from those of its suffixes in order: each once, the shorter canonical
    form of one place."""
    keys: list[str] = []
    for k in found:
        if k not in keys:
            keys.append(k)
    # "宛平晓月苑" and "晓月苑" in one ticket are one place: keep the shorter, canonical form
    # (a two-character piece such as "西里" inside "同泽园西里" is a fragment, not the place)
    keys = [k for k in keys if not (len(k) <= 2 and any(o != k and k in o for o in keys))]
    return [k for k in keys if not any(o != k and o in k for o in keys)]


def _segment_places(text: str, memo: dict | None) -> tuple[str, ...]:
    """The place keys of each suffix in ``text``, in order (repeats kept out)."""
    keys: list[str] = []
    last_end = 0
    cut_match = _window_cut().match
    for m in _SUFFIX_RE.finditer(text):
        s, e = m.span()
        lo = s - 10
        if last_end > lo:
            lo = last_end
        last_end = e
        # everything the decision looks at lies in the 24 characters before the suffix and after
        # the last separator (punctuation, space) before it: decided once per distinct window (a
        # million tickets repeat their sentences' windows: "家住丽发新城小区")
        w0 = s - 24 if s > 24 else 0
        c = cut_match(text, w0, s)
        if c is not None:
            w0 = c.end()
        args = (text[w0:e], lo - w0 if lo > w0 else 0, s - w0)
        if memo is None:
            key = _place_key(*args)
        else:
            key = memo.get(args, _MISSING)
            if key is _MISSING:
                key = memo[args] = _decide_place(*args)
        if key and key not in keys:
            keys.append(key)
    return tuple(keys)


def _decide_place(text: str, lo: int, start: int) -> str | None:
    """The key of the place whose suffix is text[start:] and whose head lies in text[lo:start]."""
    end = len(text)
    head = _CJK_TAIL.search(text, lo, start)
    if head is None:
        return None
    name_head = _cut_head(head.group(0))
    # a cut inside a word is moved to the word's start ("花家地西里", not "地西里")
    ws = word_start(text, start - len(name_head))
    if ws < 0:
        return None
    # a community's name the cut shortened ("六郎庄家园" cut at 六 → "郎庄"): take it whole
    ws = extend_to_alias(text, ws, start, end)
    name_head = text[ws:start]
    name = name_head + text[start:]
    if len(name) < 2 or name in _GENERIC:
        # "燕东路家园": the road is part of the name when nothing else is left
        name_head = _WEAK_CUT_RE.sub("", head.group(0))
        ws = word_start(text, start - len(name_head))
        if ws < 0:
            return None
        name_head = text[ws:start]
        name = name_head + text[start:]
        # only a road or street keeps a name ("燕东路家园"), not any word ("影响村" of 影响村容村貌)
        if len(name) < 3 or name in _GENERIC or not re.search(r"[路街]", name_head):
            return None
    key = _TRAILING.sub("", name) if len(name) > 3 else name
    if len(key) < 2 or key in _GENERIC or key.isdigit() or _NUMBERED.match(key):
        return None
    # a piece of a sentence ("人只能爬楼", "楼道里") or a name cut out of a word ("宅小区")
    if is_fragment(key) or generic_head(name_head) or generic_name(key):
        return None
    return key


_place_key = lru_cache(maxsize=500_000)(_decide_place)


@lru_cache(maxsize=200_000)
def _cut_head(head: str) -> str:
    return _CUT_RE.sub("", head)


GROWTH_PSEUDO = 5

# The reading rules' version, part of the digest of every ticket's cached places (table
# ticket_places, triage/hotspots/stage.py). Bump it whenever the places read from a given text
# change: a regex, a suffix or word list here or in names.py, the way parts are joined. The data
# the rules read are fingerprinted on their own (:func:`places_fingerprint`).
PLACES_VERSION = 1


def places_fingerprint(exclude_keys: set[str] | frozenset[str] = frozenset()) -> str:
    """What a ticket's places depend on besides its own text and the code: :data:`PLACES_VERSION`,
    jieba's dictionary (the rjieba version: names.word_start asks it where words begin), the
    gazetteer's community aliases (names.extend_to_alias, the separators) and the keys dropped
    (``exclude_keys``: the stage's district and street names, also from the gazetteer). The data
    are hashed as read, not the files they come from: a gazetteer edit that changes neither the
    aliases nor the excluded names changes no ticket's places and keeps the cache."""
    from importlib.metadata import version

    from triage.hotspots.names import community_aliases

    h = hashlib.md5(f"places v{PLACES_VERSION}|rjieba {version('rjieba')}".encode(), usedforsecurity=False)
    for group in (community_aliases(), exclude_keys):
        h.update(("\x1e" + "\x1f".join(sorted(group))).encode())
    return h.hexdigest()


def place_digests(columns: list[pd.Series], body_chars: int, fingerprint: str) -> list[str]:
    """Per row, a 32-character digest of exactly what :func:`_places_of_rows` reads from it (title,
    body cut to ``body_chars``, further columns such as the address) and of ``fingerprint``
    (:func:`places_fingerprint`): rows with equal digests have equal places."""
    head = fingerprint.encode()
    out: list[str] = []
    for title, body, *more in zip(*(c.tolist() for c in columns), strict=True):
        parts = [_text(title), _text(body)[:body_chars], *map(_text, more)]
        # each part's length first: no text can pass for another split differently
        src = ",".join(str(len(x)) for x in parts) + ":" + "".join(parts)
        out.append(hashlib.md5(head + src.encode(), usedforsecurity=False).hexdigest())
    return out


@dataclass
class EventParams:
    window_days: int = 90
    text_sim: float = 0.5
    place_sim: float = 0.12
    min_size: int = 2
    max_chars: int = 300  # texts are cut: the place and the problem come first in tickets
    orgs: bool = True  # organisation / case events city-wide beside place events
    # processes reading names (a second one is forked for the second half of the rows when there
    # are at least 50,000; TRIAGE_HOTSPOT_WORKERS=1 keeps everything in one process)
    workers: int = field(default_factory=lambda: int(os.environ.get("TRIAGE_HOTSPOT_WORKERS", "2")))
    org_min_voices: int = 3  # an organisation needs this many distinct callers to be an event
    baseline_prior_days: float = 14.0  # weight of the category's typical rate in an event's baseline
    new_after_days: float = 7.0  # an event starting this long after the history begins is new


def _vectorise(texts: list[str]) -> sparse.csr_matrix:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(analyzer="char", ngram_range=(2, 3), min_df=1, sublinear_tf=True, dtype=np.float32)
    try:
        return vec.fit_transform(texts).tocsr()
    except ValueError:  # every text empty
        return sparse.csr_matrix((len(texts), 1), dtype=np.float32)


def _combine(T: sparse.csr_matrix, B: sparse.csr_matrix, title_weight: float = 0.6) -> sparse.csr_matrix:
    """One row vector per ticket: the title view weighted over the body view (titles are short and
    name the place and problem; bodies add context), rows re-normalised to unit length."""
    from sklearn.preprocessing import normalize

    has_title = np.asarray(T.getnnz(axis=1) > 0)
    w = np.where(has_title, title_weight, 0.0).astype(np.float32)
    X = sparse.hstack([sparse.diags(w) @ T, sparse.diags(1 - w) @ B]).tocsr()
    return normalize(X)


def _links(
    X: sparse.csr_matrix, days: np.ndarray, place_sets: list[set[str]], rows: np.ndarray, p: EventParams
) -> tuple[np.ndarray, np.ndarray]:
    """Edges (i, j) inside one block of rows."""
    if len(rows) < 2:
        return np.empty(0, int), np.empty(0, int)
    S = (X[rows] @ X[rows].T).tocoo()
    i, j, s = S.row, S.col, S.data
    upper = i < j
    i, j, s = i[upper], j[upper], s[upper]
    near = np.abs(days[rows][i] - days[rows][j]) <= p.window_days
    i, j, s = i[near], j[near], s[near]
    strong = s >= p.text_sim
    if strong.any():  # naming two different places means two different events
        si, sj = rows[i[strong]], rows[j[strong]]
        clash = np.fromiter(
            (bool(place_sets[a]) and bool(place_sets[b]) and not (place_sets[a] & place_sets[b])
             for a, b in zip(si, sj, strict=True)),
            dtype=bool, count=len(si),
        )  # fmt: skip
        strong[np.flatnonzero(strong)[clash]] = False
    cand = (~strong) & (s >= p.place_sim)
    if cand.any():
        ci, cj = i[cand], j[cand]
        same = np.fromiter(
            (bool(place_sets[rows[a]] & place_sets[rows[b]]) for a, b in zip(ci, cj, strict=True)),
            dtype=bool,
            count=len(ci),
        )
        keep = strong.copy()
        keep[np.flatnonzero(cand)[same]] = True
    else:
        keep = strong
    return rows[i[keep]], rows[j[keep]]


def heat_score(
    size: int, callers: int, votes: float, age_days: float, growth: float, window_days: int, repeat: int = 0
) -> float:
    """Heat = (ln(1+size) + ln(1+distinct callers)/2 + ln(1+repeat callers) + ln(1+votes)/2)
    × recency × (1 + growth/2). Repeat callers weigh most per person: someone calling again means
    the problem was not solved. Recency = 0.5 + 0.5·exp(−age/window) (an old event keeps half its weight), growth clipped to
    [0, 1]; growth itself is (last 7 days − previous 7) / (previous 7 + 5), damped so that 3 tickets
    after 0 do not count as explosive."""
    recency = 0.5 + 0.5 * np.exp(-max(age_days, 0.0) / max(window_days, 1))
    g = min(max(growth, 0.0), 1.0)
    base = (
        np.log1p(size) + 0.5 * np.log1p(callers) + np.log1p(max(repeat, 0)) + 0.5 * np.log1p(max(votes, 0.0))
    )
    return round(float(base * recency * (1 + g / 2)), 4)


def _keyed_links(
    places: list[list[str]], blocks: np.ndarray, spread: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """Each ticket is linked to a node per (block, place) it names, keeping only its specific
    places: those named by at most ``spread`` (2) × as many tickets of the block as its rarest place
    (a KTV inside an estate is rarer than the estate, so a KTV ticket does not join every complaint
    about the estate, while "荣丰南院" and "荣丰南院的垃圾楼" still meet). Places no other ticket of
    the block names link nothing and are ignored."""
    rows = np.repeat(np.arange(len(places)), [len(p) for p in places])
    if len(rows) == 0:
        return np.empty(0, int), np.empty(0, int)
    flat = pd.Series([k for p in places for k in p])
    bk = pd.Series(blocks[rows]) + "\x1f" + flat
    freq = bk.map(bk.value_counts()).to_numpy()
    d = pd.DataFrame({"row": rows, "f": freq, "bk": bk})
    d = d[d["f"] >= 2]
    d = d[d["f"] <= spread * d.groupby("row")["f"].transform("min")]
    codes, _ = pd.factorize(d["bk"])
    # key nodes are numbered after the tickets
    return d["row"].to_numpy(), codes + len(places)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _in_two_processes(work, n: int, workers: int, min_rows: int = 50_000) -> list:
    """``work(0, n)`` (a list, one entry per row), the rows' second half computed in a forked
    process while this one does the first: name reading is pure Python, so two cores take about
    half the time. Where fork is not available, or the child fails, this process does it all; the
    answer is the same either way."""
    if workers < 2 or n < min_rows or not hasattr(os, "fork"):
        return work(0, n)
    mid = n // 2
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: compute, send, leave without running the parent's exit handlers
        code = 1
        try:
            os.close(r)
            with os.fdopen(w, "wb") as f:
                f.write(pickle.dumps(work(mid, n), protocol=pickle.HIGHEST_PROTOCOL))
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    f = os.fdopen(r, "rb")
    try:
        first = work(0, mid)
        data = f.read()
    finally:
        f.close()  # if this process failed, the child's write fails too and it exits
        _, status = os.waitpid(pid, 0)
    second = pickle.loads(data) if status == 0 and data else work(mid, n)
    return first + second


def _places_of_rows(
    columns: list[pd.Series], body_chars: int, exclude_keys: set[str] | frozenset[str], chunk: int = 50_000
) -> list[list[str]]:
    """The places each row names in its title, body (``columns[1]``, first ``body_chars``) and
    further columns such as the address. Read chunk by chunk: one string per row concatenated
    for a million rows at once cost ~1 GB; districts and streets in ``exclude_keys`` are dropped."""
    out: list[list[str]] = []
    memo: dict = {}  # one decision per distinct window and segment for the whole table
    # the parts are joined by a space, a separator: a text's keys are its parts' keys one after
    # the other, and a title or address many tickets share is read once; the same keys found
    # give the same places
    by_parts = _segment_split().fullmatch(" ") is not None
    rows_of: dict[tuple[str, ...], list[str]] = {}
    for a in range(0, len(columns[0]), chunk):
        parts = [c.iloc[a : a + chunk].tolist() for c in columns]
        for title, body, *more in zip(*parts, strict=True):
            if not by_parts:
                src = " ".join([_text(title), _text(body)[:body_chars], *map(_text, more)])
                ks = extract_places(src, memo)
                out.append([k for k in ks if k not in exclude_keys] if exclude_keys else ks)
                continue
            found = _shared_part(_text(title), memo) + _part_places(_text(body)[:body_chars], memo)
            for x in more:
                found += _shared_part(_text(x), memo)
            ks = rows_of.get(found)
            if ks is None:
                ks = _canonical(found)
                ks = rows_of[found] = [k for k in ks if k not in exclude_keys] if exclude_keys else ks
            out.append(list(ks))
    return out


def cluster_events(
    df: pd.DataFrame,
    id_col: str,
    text_col: str,
    time_col: str,
    title_col: str | None = None,
    votes_col: str | None = None,
    caller_col: str | None = None,
    place_cols: tuple[str, ...] = (),
    block_cols: tuple[str, ...] = (),
    params: EventParams | None = None,
    ref_time: pd.Timestamp | None = None,
    mode: str = "text",
    exclude_keys: set[str] | frozenset[str] = frozenset(),
    unit_col: str | None = None,
    known_places: pd.Series | None = None,
) -> tuple[pd.DataFrame, pd.Series]:
    """Events of a ticket table, sorted by heat score, and each row's event id (or None).

    ``mode="text"`` (files): links by text similarity and shared places, as in the module doc.
    ``mode="keyed"`` (the nightly database stage, 1M tickets): links tickets of the same block
    (street × category from routing and the classifier) that name the same place; no text model.
    Rows with an unparseable time are left out (``attrs['skipped']``); input order does not matter.
    ``place_cols`` (e.g. address) are searched for places as well as title and text; ``unit_col``
    (the resolver's community or street) checks learned place names (:func:`names.trusted_names`).
    An event's ``place`` is a trustworthy name or None (then it is shown by category and street).
    Organisation events (``kind='org'``, ``params.orgs``) group tickets naming the same organisation
    anywhere, whatever their block; one caller counts once (``voices``).

    ``known_places`` (on ``df``'s index: a row's place keys as read before from the same texts with
    the same ``max_chars`` and ``exclude_keys``, None or NaN where not known; the nightly stage's
    cache) spares reading those rows; the rows read are then handed back in ``attrs['places']`` (a
    Series on ``df``'s index) for the caller to keep. The events are the same either way."""
    p = params or EventParams()
    times = pd.to_datetime(df[time_col], errors="coerce", format="mixed")
    if getattr(times.dt, "tz", None) is not None:
        times = times.dt.tz_convert("Asia/Shanghai").dt.tz_localize(None)
    ok = times.notna().to_numpy()
    data = df.loc[ok].reset_index(drop=True)
    times = times[ok].reset_index(drop=True)
    membership = pd.Series([None] * len(df), index=df.index, dtype=object)
    if data.empty:
        out = _empty_events()
        out.attrs["skipped"] = int((~ok).sum())
        if known_places is not None:
            out.attrs["places"] = pd.Series([], dtype=object)
        return out, membership
    n = len(data)
    title = data[title_col].fillna("").astype(str) if title_col else pd.Series([""] * n)
    body = data[text_col]  # cut to max_chars where it is read
    cols = [title, body, *(data[c] for c in place_cols)]
    known = None if known_places is None else known_places.reindex(df.index).to_numpy(dtype=object)[ok]
    todo = np.arange(n) if known is None else np.flatnonzero([not isinstance(x, list) for x in known])
    if len(todo) < n:  # only the rows not known are read (and split between the processes)
        cols = [c.iloc[todo] for c in cols]
    read = _in_two_processes(
        lambda a, b: _places_of_rows([c.iloc[a:b] for c in cols], p.max_chars, exclude_keys),
        len(todo),
        p.workers,
    )
    places, computed = read, None
    if known is not None:
        places = list(known)
        for i, ks in zip(todo.tolist(), read, strict=True):
            places[i] = ks
        computed = pd.Series(read, index=df.index[ok][todo], dtype=object)
    if block_cols:
        blocks = data[block_cols[0]].astype(str).to_numpy()
        for c in block_cols[1:]:
            blocks = blocks + "|" + data[c].astype(str).to_numpy()
    else:
        blocks = np.full(n, "", dtype=object)
    X = None
    if mode == "keyed":
        ei_a, ej_a = _keyed_links(places, blocks)
        n_nodes = n + (int(ej_a.max()) - n + 1 if len(ej_a) else 0)
    else:
        body_cut = body.fillna("").astype(str).str.slice(0, p.max_chars).tolist()
        X = _combine(_vectorise(title.tolist()), _vectorise(body_cut))
        days = (times - times.min()).dt.total_seconds().to_numpy() / 86400.0
        place_sets = [set(x) for x in places]
        order = np.argsort(blocks, kind="stable")
        bounds = np.flatnonzero(np.r_[True, blocks[order][1:] != blocks[order][:-1], True])
        ei, ej = [np.empty(0, int)], [np.empty(0, int)]
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            x, y = _links(X, days, place_sets, order[a:b], p)
            ei.append(x)
            ej.append(y)
        ei_a, ej_a = np.concatenate(ei), np.concatenate(ej)
        n_nodes = n
    G = sparse.coo_matrix((np.ones(len(ei_a)), (ei_a, ej_a)), shape=(n_nodes, n_nodes))
    _, labels = connected_components(G, directed=False)
    labels = labels[:n]
    sizes = np.bincount(labels)
    keep = sizes[labels] >= p.min_size
    if not keep.any() and not p.orgs:  # (organisations are looked for even with no place event)
        out = _empty_events()
        out.attrs["skipped"] = int((~ok).sum())
        if computed is not None:
            out.attrs["places"] = computed
        return out, membership
    ref = ref_time if ref_time is not None else times.max()
    idx = np.flatnonzero(keep)
    m = pd.DataFrame(
        {
            "lab": labels[idx],
            "t": times.to_numpy()[idx],
            "id": data[id_col].astype(str).to_numpy()[idx],
            "votes": (
                pd.to_numeric(data[votes_col], errors="coerce").fillna(0).to_numpy()[idx]
                if votes_col
                else 0.0
            ),
            "caller": data[caller_col].to_numpy()[idx] if caller_col else None,
            "title": title.to_numpy()[idx],
            "row": idx,
        }
    ).sort_values(["lab", "t", "id"], kind="stable")
    g = m.groupby("lab", sort=False)
    ev = g.agg(size=("id", "size"), first=("t", "min"), last=("t", "max"), votes=("votes", "sum"),
               first_row=("row", "first"))  # fmt: skip
    ev["member_ids"] = g["id"].agg(list)
    ev["days_active"] = m.assign(d=m["t"].dt.normalize()).groupby("lab")["d"].nunique()
    ev["recent_7d"] = m[m["t"] > ref - pd.Timedelta(days=7)].groupby("lab").size()
    ev["prev_7d"] = (
        m[(m["t"] <= ref - pd.Timedelta(days=7)) & (m["t"] > ref - pd.Timedelta(days=14))]
        .groupby("lab")
        .size()
    )
    ev[["recent_7d", "prev_7d"]] = ev[["recent_7d", "prev_7d"]].fillna(0).astype(int)
    ev["growth"] = (ev["recent_7d"] - ev["prev_7d"]) / (ev["prev_7d"] + GROWTH_PSEUDO)
    if caller_col:
        cv = m.dropna(subset=["caller"])
        ev["callers"] = cv.groupby("lab")["caller"].nunique()
        per = cv.groupby(["lab", "caller"]).size()
        ev["repeat_callers"] = (per > 1).groupby(level=0).sum()
        ev["callers"] = ev["callers"].fillna(ev["size"]).astype(int)
        ev["repeat_callers"] = ev["repeat_callers"].fillna(0).astype(int)
    else:
        ev["callers"], ev["repeat_callers"] = ev["size"], 0
    # the place most members name (if at least a third of them do)
    pl = pd.DataFrame({"lab": np.repeat(labels[idx], [len(places[i]) for i in idx]),
                       "k": [k for i in idx for k in places[i]]})  # fmt: skip
    if len(pl):
        pc = (
            pl.groupby(["lab", "k"])
            .size()
            .rename("c")
            .reset_index()
            .sort_values(["lab", "c"], ascending=[True, False])
        )
        pc = pc[pc["k"].isin(_trusted(places, times, data, unit_col))]
        top = pc.drop_duplicates("lab").set_index("lab")
        ev["place"] = top["k"].where(top["c"] >= np.maximum(2, ev.loc[top.index, "size"] // 3))
    else:
        ev["place"] = None
    # representative title: the medoid (closest to the centroid) in text mode, else the most common
    if X is not None:
        rep = {}
        for lab, rows in m.groupby("lab")["row"]:
            sub = X[rows.to_numpy()]
            c = np.asarray(sub.mean(axis=0)).ravel()
            rep[lab] = int(rows.to_numpy()[int(np.argmax(sub @ c))])
        ev["rep_row"] = pd.Series(rep)
    else:
        tc = (
            m[m["title"] != ""]
            .groupby(["lab", "title"])
            .agg(c=("row", "size"), r=("row", "first"))
            .reset_index()
        )
        tc = tc.sort_values(["lab", "c"], ascending=[True, False]).drop_duplicates("lab").set_index("lab")
        ev["rep_row"] = tc["r"]
        ev["rep_row"] = ev["rep_row"].fillna(ev["first_row"]).astype(int)
    ev["voices"] = _voices(m)
    ev["kind"] = "place"
    rr = ev["rep_row"].to_numpy()
    ev["title"] = [title.iloc[r] or _text(body.iloc[r])[:40] for r in rr]
    age = ((ref - ev["last"]).dt.total_seconds() / 86400.0).to_numpy()
    ev["score"] = [
        heat_score(int(a), int(b), float(v), float(ag), float(gr), p.window_days, int(rc))
        for a, b, v, ag, gr, rc in zip(
            ev["voices"], ev["callers"], ev["votes"], age, ev["growth"], ev["repeat_callers"], strict=True
        )
    ]
    ids0 = data[id_col].astype(str).to_numpy()
    ev["event_id"] = [
        "E" + hashlib.sha1(f"{pl_}|{blocks[fr]}|{ids0[fr]}".encode()).hexdigest()[:12]
        for pl_, fr in zip(ev["place"].fillna(""), ev["first_row"], strict=True)
    ]
    for c in block_cols:
        ev[c] = data[c].to_numpy()[ev["first_row"].to_numpy()]
    ev["first_seen"] = ev["first"].map(lambda x: x.isoformat())
    ev["last_seen"] = ev["last"].map(lambda x: x.isoformat())
    ev["growth"] = ev["growth"].round(3)
    ev["_lab"] = ev.index
    recent_v = _voices(m[m["t"] > ref - pd.Timedelta(days=7)]).reindex(ev.index).fillna(0)
    old_v = _voices(m[m["t"] <= ref - pd.Timedelta(days=7)]).reindex(ev.index).fillna(0)
    ev["recent_voices"] = recent_v.astype(int)
    ev["old_voices"] = old_v.astype(int)
    if p.orgs:
        orgs = _org_events(
            data,
            title,
            body,
            times,
            places,
            m,
            ev,
            id_col,
            caller_col,
            votes_col,
            block_cols,
            p,
            ref,
            exclude_keys,
        )
        ev = pd.concat([ev, orgs], ignore_index=True) if len(orgs) else ev
    hist_days = max(((ref - pd.Timedelta(days=7)) - times.min()).total_seconds() / 86400.0, 1.0)
    ev["first"], ev["last"] = pd.to_datetime(ev["first"]), pd.to_datetime(ev["last"])
    _baseline(ev, hist_days, block_cols[-1] if block_cols else None, p, times.min())
    out = ev[["event_id", "score", "size", "first_seen", "last_seen", "days_active", "growth", "recent_7d",
              "callers", "repeat_callers", "votes", "place", "title", "member_ids", "kind", "voices",
              "recent_voices", "baseline_7d", "surprise", *block_cols]]  # fmt: skip
    out = out.sort_values(["score", "size", "event_id"], ascending=[False, False, True]).reset_index(
        drop=True
    )
    for c in ("voices", "recent_voices"):
        out[c] = out[c].astype(int)
    place_ev = ev[ev["kind"] == "place"]
    eid = pd.Series(place_ev["event_id"].to_numpy(), index=place_ev["_lab"].to_numpy())
    membership.iloc[np.flatnonzero(ok)[idx]] = eid.reindex(labels[idx]).to_numpy()
    out.attrs["skipped"] = int((~ok).sum())
    if computed is not None:
        out.attrs["places"] = computed
    return out, membership


def _empty_events() -> pd.DataFrame:
    return pd.DataFrame(
        columns=["event_id", "score", "size", "first_seen", "last_seen", "days_active", "growth", "recent_7d",
                 "callers", "repeat_callers", "votes", "place", "title", "member_ids", "kind", "voices",
                 "recent_voices", "baseline_7d", "surprise"]
    )  # fmt: skip


def _voices(m: pd.DataFrame) -> pd.Series:
    """Distinct callers per event, anonymous tickets one each: a caller repeating a complaint 50
    times is one voice."""
    if "caller" not in m or m["caller"].isna().all():
        return m.groupby("lab").size()
    known = m.dropna(subset=["caller"]).groupby("lab")["caller"].nunique()
    anon = m[m["caller"].isna()].groupby("lab").size()
    return known.add(anon, fill_value=0).astype(int)


def _voices_of(callers: np.ndarray) -> int:
    """:func:`_voices` of one event from its members' callers (None/NaN: anonymous, one voice each)."""
    if len(callers) == 0:
        return 0
    na = pd.isna(callers)
    return int(pd.unique(callers[~na]).size + na.sum())


def _trusted(places: list[list[str]], times: pd.Series, data: pd.DataFrame, unit_col: str | None) -> set[str]:
    from triage.hotspots.names import trusted_names

    rows = np.repeat(np.arange(len(places)), [len(p) for p in places])
    keys = [k for p in places for k in p]
    days = times.dt.normalize().to_numpy()
    units = data[unit_col].to_numpy() if unit_col and unit_col in data else None
    return trusted_names(rows, keys, days, units)


def _baseline(
    ev: pd.DataFrame, hist_days: float, cat_col: str | None, p: EventParams, start: pd.Timestamp
) -> None:
    """Each event's expected voices in the last 7 days from its own history (voices before those 7
    days over the days of history) shrunk towards its category's typical event (``baseline_prior_days``
    days of the median rate), and the surprise −log10 P(recent ≥ observed). A large estate's
    everyday level is its baseline, not news. In place (columns baseline_7d, surprise)."""
    from scipy import stats

    rate = ev["old_voices"] / hist_days
    if cat_col and cat_col in ev:
        prior = rate.groupby(ev[cat_col].fillna("-")).transform("median")
    else:
        prior = pd.Series(float(rate.median()) if len(rate) else 0.0, index=ev.index)
    a = p.baseline_prior_days
    lam = 7.0 * (ev["old_voices"] + a * prior) / (hist_days + a)
    lam = np.maximum(lam.to_numpy(dtype=float), 0.05)
    sf = stats.poisson.sf(ev["recent_voices"].to_numpy() - 1, lam)
    # a new event (its first ticket ≥ new_after_days into the history) is compared as a whole with
    # what its category's typical place gets in as many days: a complaint that began three weeks
    # ago is news although its last 7 days are like its first two
    span = ((ev["last"] - ev["first"]).dt.total_seconds() / 86400.0 + 1.0).to_numpy()
    new = (ev["first"] - start).dt.total_seconds().to_numpy() / 86400.0 >= p.new_after_days
    lam_span = np.maximum(prior.to_numpy(dtype=float) * span, 0.05)
    sf_new = np.where(new, stats.poisson.sf(ev["voices"].to_numpy() - 1, lam_span), 1.0)
    ev["baseline_7d"] = np.round(lam, 3)
    ev["surprise"] = np.round(np.minimum(-np.log10(np.maximum(np.minimum(sf, sf_new), 1e-30)), 30.0), 3)


def _joined_sources(title: pd.Series, body: pd.Series, max_chars: int, chunk: int = 100_000):
    """Per chunk of rows: (first row, the texts title + " " + body[:max_chars], each text's start in
    the chunk's texts joined by "\x00", that joined string): one search per chunk instead of one
    per row."""
    for a in range(0, len(title), chunk):
        srcs = [
            _text(t) + " " + _text(b)[:max_chars]
            for t, b in zip(
                title.iloc[a : a + chunk].tolist(), body.iloc[a : a + chunk].tolist(), strict=True
            )
        ]
        starts = np.zeros(len(srcs), dtype=np.int64)
        if len(srcs) > 1:
            starts[1:] = np.cumsum(
                np.fromiter((len(x) + 1 for x in srcs[:-1]), dtype=np.int64, count=len(srcs) - 1)
            )
        yield a, srcs, starts, "\x00".join(srcs)


# an organisation named by this many voices or more is not checked for reposts: a handful of
# texts is what decides whether it reaches ``org_min_voices``
REPOST_CHECK_BELOW = 20
REPOST_MIN_COSINE = 0.6  # measured on the real messages: reposts 0.63–1.0, different messages ≤ 0.58


def _voices_without_reposts(g: pd.DataFrame, title: pd.Series, body: pd.Series, max_chars: int) -> int:
    """Voices of one organisation's messages (``g``: rows, callers) when anonymous texts that are
    near-copies of each other (character-trigram cosine ≥ ``REPOST_MIN_COSINE``) count once:
    without a caller, a message posted twice would otherwise look like two people."""
    from scipy.sparse.csgraph import connected_components
    from sklearn.feature_extraction.text import TfidfVectorizer

    g = g.drop_duplicates("row")
    anon = g[g["caller"].isna()]
    known = int(g["caller"].dropna().nunique())
    if len(anon) < 2:
        return known + len(anon)
    texts = [_text(title.iloc[i]) + _text(body.iloc[i])[:max_chars] for i in anon["row"]]
    try:
        X = TfidfVectorizer(analyzer="char", ngram_range=(3, 3)).fit_transform(texts)
    except ValueError:  # texts too short for a trigram
        return known + len(anon)
    n, _ = connected_components((X @ X.T) >= REPOST_MIN_COSINE, directed=False)
    return known + int(n)


def _org_events(
    data,
    title,
    body,
    times,
    places,
    m,
    place_ev,
    id_col,
    caller_col,
    votes_col,
    block_cols,
    p: EventParams,
    ref,
    exclude_keys=frozenset(),
) -> pd.DataFrame:
    """Events keyed on an organisation named by ≥ ``org_min_voices`` callers, across every block
    (a company case spread over districts is one event). An organisation that already names a place
    event of its own is left to it."""
    from triage.hotspots.names import case_words, extract_orgs, merge_variants

    ids = data[id_col].astype(str).to_numpy()
    callers = data[caller_col].to_numpy() if caller_col else np.full(len(data), None, dtype=object)
    from triage.hotspots.names import _ORG_RE

    rows, keys = [], []
    memo: dict = {}  # one decision per distinct window for the whole table
    for a, srcs, starts, big in _joined_sources(title, body, p.max_chars):
        # only the texts naming a kind of organisation are read (one search over the chunk)
        hit = np.unique(np.searchsorted(starts, [m.start() for m in _ORG_RE.finditer(big)], "right") - 1)
        for j in hit.tolist():
            for k in extract_orgs(srcs[j], memo):
                if k in exclude_keys or k[:-1] in exclude_keys:  # "羊坊店" is a street, not a shop
                    continue
                rows.append(a + j)
                keys.append(k)
    if not rows:
        return pd.DataFrame()
    d = pd.DataFrame({"row": rows, "k": keys})
    d["caller"] = callers[d["row"].to_numpy()]
    d["cid"] = d["caller"].where(d["caller"].notna(), "#" + d["row"].astype(str))
    d["k"] = d["k"].replace(merge_variants(set(d["k"])))
    named = set(place_ev["place"].dropna())
    v = d.groupby("k")["cid"].nunique()
    near = v[(v >= p.org_min_voices) & (v < REPOST_CHECK_BELOW)].index
    if len(near) and d["caller"].isna().any():
        # anonymous messages posted again (the same text twice) are one voice, not two
        rows_of_k = d[d["k"].isin(near)].groupby("k")
        v.update(pd.Series({k: _voices_without_reposts(g, title, body, p.max_chars) for k, g in rows_of_k}))
    keep = [k for k in v[(v >= p.org_min_voices) & ~v.index.isin(named)].index]
    # "查处鑫利贷" and "鑫利贷": the shorter name is the organisation
    keep = sorted(k for k in keep if not any(o != k and o in k for o in keep))
    if not keep:
        return pd.DataFrame()
    # a known organisation is found however it is written ("被鑫利贷的人骗", no suffix after it)
    import ahocorasick

    auto = ahocorasick.Automaton()
    for k in keep:
        if len(k) >= 3:
            auto.add_word(k, k)
    extra_r, extra_k = [], []
    if len(auto):
        auto.make_automaton()
        for a, _, starts, big in _joined_sources(title, body, p.max_chars):
            found = list(auto.iter(big))  # (end position, key); no key holds the "\x00" between texts
            if found:
                ends, ks = zip(*found, strict=True)
                extra_r.extend((a + np.searchsorted(starts, ends, "right") - 1).tolist())
                extra_k.extend(ks)
    # int64 even when nothing extra was found (two-character names are not searched): an empty
    # float column would make every row number a float and the stage fail
    extra = pd.DataFrame({"row": np.asarray(extra_r, dtype=np.int64), "k": pd.Series(extra_k, dtype=object)})
    d = pd.concat([d[["row", "k"]], extra], ignore_index=True)
    rows_of = d.groupby("k")["row"].unique()
    # columns read once for every organisation (a per-organisation read of a million-row column
    # cost seconds each)
    times_a = times.to_numpy()
    votes_a = pd.to_numeric(data[votes_col], errors="coerce").fillna(0).to_numpy() if votes_col else None
    block_a = {c: data[c].to_numpy() for c in block_cols}
    t7, t14 = ref - pd.Timedelta(days=7), ref - pd.Timedelta(days=14)
    out = []
    for k in keep:
        r = np.sort(rows_of[k])
        t = times_a[r]
        order = np.lexsort((ids[r], t))
        r, t = r[order], t[order]
        cal = callers[r] if caller_col else np.full(len(r), None, dtype=object)
        tser = pd.Series(t)
        recent_m = (tser > t7).to_numpy()
        recent = int(recent_m.sum())
        prev = int(((tser <= t7) & (tser > t14)).sum())
        per = pd.Series(callers[r]).dropna().value_counts() if caller_col else pd.Series(dtype=int)
        cases = sorted(
            {w for i in r for w in case_words(_text(title.iloc[i]) + _text(body.iloc[i])[: p.max_chars])}
        )
        votes = float(votes_a[r].sum()) if votes_col else 0.0
        rec = {
            "size": len(r),
            "first": tser.min(),
            "last": tser.max(),
            "votes": votes,
            "first_row": int(r[0]),
            "member_ids": ids[r].tolist(),
            "days_active": int(tser.dt.normalize().nunique()),
            "recent_7d": recent,
            "prev_7d": prev,
            "growth": (recent - prev) / (prev + GROWTH_PSEUDO),
            "callers": int(per.size) if caller_col else len(r),
            "repeat_callers": int((per > 1).sum()),
            "place": k,
            "kind": "org",
            "voices": _voices_of(cal),
            "recent_voices": _voices_of(cal[recent_m]),
            "old_voices": _voices_of(cal[~recent_m]),
            "title": (
                k
                + ("（" + "、".join(cases[:3]) + "）" if cases else "")
                + "："
                + (_text(title.iloc[r[-1]]) or _text(body.iloc[r[-1]])[:40])
            ),
            "event_id": "O" + hashlib.sha1(("org|" + k).encode()).hexdigest()[:12],
        }
        age = (ref - rec["last"]).total_seconds() / 86400.0
        rec["score"] = heat_score(
            rec["voices"], rec["callers"], votes, age, rec["growth"], p.window_days, rec["repeat_callers"]
        )
        # the block of most of its tickets (where a task could go), "-" when spread out
        for c in block_cols:
            vals = pd.Series(block_a[c][r]).value_counts()
            rec[c] = vals.index[0] if len(vals) and vals.iloc[0] >= 0.6 * len(r) else "-"
        rec["first_seen"], rec["last_seen"] = rec["first"].isoformat(), rec["last"].isoformat()
        rec["growth"] = round(rec["growth"], 3)
        out.append(rec)
    return pd.DataFrame(out)
