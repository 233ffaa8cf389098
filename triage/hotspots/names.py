"""What an event is about, in words a person would write: place names that are names (not pieces of
a sentence), organisation and case names, and which of them are trustworthy enough to label an event.

* **Fragments** ("人只能爬楼", "老板说公司", "前段时间隔壁", "严重时楼道里", "宅小区" cut out of 住宅小区):
  a candidate is refused when it holds a verb, adverb or particle a name does not (a short word
  list), when it starts inside a dictionary word (jieba's dictionary: "住"+"宅" is 住宅), or when it is
  "inside something" (楼道里, 群里, 房里) rather than a 里 estate (花家地西里, 和平里).
* **Organisations and cases**: names before 公司 / 集团 / 银行 / 平台 / 学院 / 大学 / 中学 / 医院 /
  物业 / 店 / 贷 …, legal forms removed ("程明物业管理有限公司" → "程明物业"); generic ones
  (公司, 学校, 当地政府, 民办学校) are never keys. Case words (诈骗, 非法集资, 退费 …) label them.
  "…开发商" is not read as a name: on the real messages the words before it were never the
  developer's name (房产证开发商, 业主代表开发商, 帝王广场栋开发商: 0 of 6); developers are named as
  companies (…房地产开发有限公司, …置业). A government office (环保局, 教育厅) is whom a message is
  addressed to, not what it is about: "环保局平台" is no organisation key. "原航运公司" is the former
  航运 company: the key is read without 原.
* **Trust** (:func:`trusted_names`): a name labels an event when it is a community of the gazetteer,
  or when the tickets themselves make it a stable name: named by at least ``min_tickets`` tickets on
  at least 2 days, and — where the router located the tickets — mostly in one community (or street):
  a real estate is somewhere; a fragment is everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

import numpy as np
import pandas as pd

# words no place or organisation name contains (verbs of speech and motion, adverbs, particles,
# time words); found in the ticket fragments of the sample night and the real messages
_FRAGMENT = re.compile(
    r"只能|只有|说|跟|找|时间|隔壁|几次|好几|一直|已经|经常|严重|因为|所以|但是|如果|怎么|什么|现在|"
    r"今天|昨天|每天|天天|晚上|早上|告诉|还有|没有|不能|不让|不给|要求|希望|感谢|相信|解决|强烈|通知|"
    r"落实|理解|领导|问题|请|让|被|把|给|吗|呢|吧|啊|很|非常|爬|搬|拒|怕|送|接收|开学|就读|前往|"
    r"孩子|业主群|群里|临时|有关|相关|目前|最近|之前|以前|后来|前段|这边|那边|里面|外面|附近|"
    r"(?<!新)时(?!代|光|尚)|公里|千米|米$|就|往楼|都在|总是|老是|一到|每到|饭点|刚|而且|建议|督促|更换|涨|說|影响|"
    r"部门|每次|装修|都要|跑|出店|开店|搞|占着"
)
# "X里" is a 里 estate (花家地西里, 和平里) unless X is something one is inside of
_INSIDE = re.compile(
    r"(?:楼道|电梯|房|屋|家|群|车|店|院|村|城|心|夜|手|话|会|厅|校|室|间|邻|眼|河|沟|坑|池|井|"
    r"路|街|区|棚|圈|网|站|年|月|天|梦|子|局|市|所|厂|场|园|水|田|地|山|库|层|楼)里$"
)
_DIRECTION_LI = re.compile(r"[东西南北中前后][一二三四五六七八九十]?里$")
# heads that only say what kind of organisation it is: "民办学校", "当地政府", "各级医院"
_GENERIC_HEAD = re.compile(
    r"^(?:当地|各级|地方|本地|我们|你们|他们|这所|那所|该|某|一所|一家|这家|那家|此|本|所在|周边|周围|附近|"
    r"民办|公办|公立|私立|私营|国营|国有|正规|大型|小型|新|老|原|旧|县|市|区|乡|镇|村|省|级|全体|部分|各|多|"
    r"几|每|上级|下级|党委|委|人民|中|小|大|高|初|职|普通|重点|定点|附属|合作|相应|有的|一些|很多|"
    r"出租车|公交|物业|开发|工程|建筑|建设|劳务|检测|监理|科技|投资|房地产|置业|施工|配套|院配套|周边)*$"
)

# organisations: a name and the kind of body it is (longest first)
_ORG_SUFFIX = (
    "股份有限公司|有限责任公司|有限公司|分公司|公司|集团|银行|平台|金服|车贷|网贷|学院|大学|中学|小学|"
    "幼儿园|学校|驾校|培训机构|培训学校|培训中心|医院|卫生院|诊所|物业|4S店|专卖店|旗舰店"
)
_ORG_RE = re.compile(r"(?:" + _ORG_SUFFIX + r")")
_LEGAL = re.compile(
    r"(?:股份有限公司|有限责任公司|有限公司|分公司|公司|集团|管理|服务|置业|房地产开发|房地产|开发|投资|科技|实业|"
    r"发展|经营|咨询|网络|信息|贸易|商贸)+$"
)
# people a sentence is about (业主, 家长, 候选人 …) and 开发商 end the words before a name:
# "居民艾恩米国际幼儿园", "开发商燃气公司", "中标候选人华科技股份有限公司"
_ORG_CUT = re.compile(
    r".*(?:[市区县镇乡省]|街道|路|街|号|在|住|于|的|是|了|和|与|及|对|向|给|从|到|为|被|把|我|你|他|她|们|"
    r"业主|居民|村民|市民|群众|家长|学生|老师|员工|职工|患者|病人|代表|候选人|开发商|"
    r"该|本|此|这|那|个|位|反映|关于|请|问|投诉|举报|希望|要求|附近|旁边|门口|对面|每|所|家|去|来|据说|"
    r"找|说|跟|让|叫|称|报|过|，|,|。|、|：|:|；|;|“|”|\s)"
)
CASE_WORDS = (
    "非法集资",
    "集资诈骗",
    "诈骗",
    "传销",
    "跑路",
    "爆雷",
    "暴雷",
    "退费",
    "退款",
    "拖欠工资",
    "欠薪",
    "强制实习",
    "变相强制实习",
    "强制",
    "实习",
    "维权",
    "逾期",
    "高利贷",
    "套路贷",
    "暴力催收",
    "催收",
)
_CASE_RE = re.compile("|".join(sorted(CASE_WORDS, key=len, reverse=True)))
_DATE_IN_NAME = re.compile(r"\d\s*[年月日]|月\d")
_CJK_TAIL = re.compile(r"[A-Za-z0-9\u4e00-\u9fff]{1,12}$")


def _has_word(a: str) -> bool:
    import rjieba

    return bool(rjieba.has_word(a))


def word_start(text: str, start: int) -> int:
    """Where the name beginning at ``start`` really begins: a cut may land inside a word ("花家地西里"
    cut after 家 as in 我家 → "地西里"; "住宅小区" → "宅小区"); when the characters just before and the
    first of the name form a dictionary word (jieba's dictionary, 2 or 3 characters), the word's
    start is taken (twice at most). What is left is then judged by :func:`is_fragment`.

    The answer only reads text[start-4 : start+4] (two steps back of at most 2 characters, words
    cut with 3 characters after them), so it is decided once per distinct 8-character piece."""
    if start <= 0 or start >= len(text):
        return start
    a = max(0, start - 4)
    r = _word_start_piece(text[a : start + 4], start - a)
    return r + a if r >= 0 else r


@lru_cache(maxsize=200_000)
def _word_start_piece(text: str, start: int) -> int:
    for _ in range(2):
        if start <= 0 or start >= len(text) or not _cjk(text[start]) or not _cjk(text[start - 1]):
            return start
        for k in (2, 1):
            if (
                start - k >= 0
                and all(map(_cjk, text[start - k : start]))
                and _word_here(text, start - k, start + 1)
            ):
                if text[start - k] in _CUT_CHARS:
                    # the word begins with what the cut removed ("住宅", "每次", "影响"): the name was
                    # a piece of that word, not a name
                    return -1
                start -= k
                break
        else:
            return start
    return start


# one-character words that end a name's left side: the cut's and common verbs/adverbs
_TAIL_STOP = frozenset("有要开让叫请没不也都还就又再很太会能想去来到在")
# single characters after which a name starts (the cut lists' one-character entries)
_CUT_CHARS = frozenset(
    "市区县镇乡路街道号省在住于的是了和与及对向给从到为被把我你他她们该本此这那个位一二三四五六七八九十每所家上下去来找次几某老离群说报过称影"
)


def _word_here(text: str, a: int, b: int) -> bool:
    """text[a:b] is a dictionary word that jieba also segments there (a word the text really uses:
    "住宅" in 住宅小区, not "报安" across 举报/安信通)."""
    import rjieba

    if not _has_word(text[a:b]):
        return False
    toks = rjieba.cut(text[a : b + 3])
    return bool(toks) and toks[0].startswith(text[a:b])


def _cjk(c: str) -> bool:
    return "\u4e00" <= c <= "\u9fff"


@lru_cache(maxsize=200_000)
def is_fragment(name: str) -> bool:
    """A piece of a sentence rather than a name (see the module doc)."""
    if not name or len(name) < 2:
        return True
    if _FRAGMENT.search(name):
        return True
    return bool(
        name.endswith("里") and not _DIRECTION_LI.search(name) and (_INSIDE.search(name) or len(name) < 3)
    )


@lru_cache(maxsize=200_000)
def generic_head(head: str) -> bool:
    """Only says what kind of body it is ("当地" 政府, "民办" 学校, "" 小区)."""
    return bool(head) and bool(_GENERIC_HEAD.match(head))


_KIND_WORDS = (
    "人民政府",
    "政府",
    "学校",
    "医院",
    "公司",
    "小区",
    "学院",
    "中学",
    "小学",
    "幼儿园",
    "法院",
    "中心",
    "村",
    "楼",
    "城",
)


@lru_cache(maxsize=200_000)
def generic_name(key: str) -> bool:
    """ "当地政府", "私立学校", "各级医院": a kind of body with a generic qualifier, not a name."""
    return any(key.endswith(w) and generic_head(key[: -len(w)]) for w in _KIND_WORDS)


def org_head(name: str) -> str:
    """The distinctive part of an organisation's name: legal forms and trade words removed
    ("程明物业管理有限公司" → "程明物业", "佳煌房地产开发有限公司" → "佳煌")."""
    head = _LEGAL.sub("", name)
    return head or name


def extract_orgs(text: str, memo: dict | None = None) -> list[str]:
    """See :func:`_extract_orgs`; only texts naming a kind of organisation are looked at. ``memo``
    (a dict the caller keeps for a batch of texts) holds the decisions per window."""
    text = text or ""
    if not _ORG_RE.search(text):
        return []
    return _extract_orgs(text, memo)


# a character no name holds (not a letter, digit or CJK): nothing an organisation's decision reads
# lies before the last of them (a newline excepted: "$" of a name's tail also matches before one)
_NON_NAME_CUT = re.compile(r".*[^A-Za-z0-9\u4e00-\u9fff\n]", re.S)
_MISSING = object()


def _extract_orgs(text: str, memo: dict | None = None) -> list[str]:
    """Organisation / platform / school / hospital / brand-shop names in free text, as keys (the name
    with its kind: "经济学院", "程明物业", "58车贷"); generic names are not keys. A bare "…店" is not
    an organisation (烧烤店, 美发店: a shop's complaints are about its place, a place event).

    Each candidate is decided on the window it reads (:func:`_org_decision`): up to 16 characters
    before the kind word, after the last non-name character, to 4 characters past the kind word's
    start; a million tickets repeat their windows."""
    text = text or ""
    out: list[str] = []
    last_end = 0
    for m in _ORG_RE.finditer(text):
        w0 = max(0, m.start() - 16)
        c = _NON_NAME_CUT.match(text, w0, m.start())
        if c is not None:
            w0 = c.end()
        args = (text[w0 : max(m.end(), m.start() + 4)], max(last_end - w0, m.start() - 12 - w0, 0),
                m.start() - w0, m.end() - w0)  # fmt: skip
        if memo is None:
            advance, stem = _org_decision_cached(*args)
        else:
            got = memo.get(args, _MISSING)
            if got is _MISSING:
                got = memo[args] = _org_decision(*args)
            advance, stem = got
        if advance:
            last_end = m.end()
        if stem is not None and stem not in out:
            out.append(stem)
    return [k for k in out if not any(o != k and k in o and len(k) <= 2 for o in out)]


def _org_decision(text: str, lo: int, m_start: int, m_end: int) -> tuple[bool, str | None]:
    """The organisation whose kind word is text[m_start:m_end] and whose name lies in
    text[lo:m_start]: (whether the kind word was taken, so the next name starts after it; the key
    or None)."""
    tail = _CJK_TAIL.search(text, lo, m_start)
    if tail is None:
        return False, None
    head = _ORG_CUT.sub("", tail.group(0))
    start = word_start(text, m_start - len(head))
    if start < 0:
        return False, None
    # simplified script (物業 = 物业), legal forms and trade words off ("程明物业管理" → "程明物业"),
    # then the name at the end
    from triage.text import normalize

    head = normalize(text[start:m_start])
    head = _name_tail(_LEGAL.sub("", _CASE_RE.sub("", _ORG_CUT.sub("", head))))
    if head.startswith("原") and len(head) > 2:  # "原航运公司": the former shipping company
        head = head[1:]
    if len(head) < 2 or is_fragment(head) or generic_head(head) or _GOV_OFFICE.search(head):
        return True, None
    kind = text[m_start:m_end]
    kind = {"股份有限公司": "公司", "有限责任公司": "公司", "有限公司": "公司", "分公司": "公司"}.get(
        kind, kind
    )
    if kind in _INSTITUTIONS and (_AFFILIATED.match(head) or _type_only(head)):
        # a hospital or school of a university: "南华大学附一医院", "南华大学附二医院"
        before = normalize(text[:m_start])
        parent = _PARENT.search(before[: len(before) - len(head)]) if before.endswith(head) else None
        name = _ORG_CUT.sub("", parent.group(1)) if parent is not None else ""
        if len(name) >= 2 and not _type_only(name):
            return True, name + parent.group(0)[len(parent.group(1)) :] + head + kind
    if kind not in ("学院", "大学", "平台", "车贷", "网贷", "金服") and _common_word(head):
        return True, None  # "烧烤店", "装修公司", "配套小学": a trade, not a name
    if kind in ("店", "专卖店", "旗舰店") and _all_common(head):
        return True, None  # a shop is a brand ("好再来"), not a kind of goods ("美发", "麻辣香锅")
    stem = head if kind in ("公司", "集团", "平台") or head.endswith(kind) else head + kind
    if is_fragment(stem) or (len(head) <= 2 and head[-1] in "里苑园院区村城府"):
        return True, None  # "商户出店": a verb; "北里物业": the estate's name was cut
    aliases = community_aliases()
    if stem in aliases or head in aliases or stem + "村" in aliases:
        return True, None  # 小鲁店, 马连店, 半壁店: villages and estates, places not shops
    if re.fullmatch(r"[0-9A-Za-z]+", stem) or _DATE_IN_NAME.search(stem):
        return True, None  # "2016年11月公司…", "…月24日医院": a date, not a name
    if kind in _INSTITUTIONS and (_type_only(head) or _AFFILIATED.match(head)):
        # "理工大学", "经济学院", "职业技术学院", "附一医院" without its university: a type every city
        # has; with the city or district written just before it ("A市经济学院") a name, else no key
        lead = normalize(text[lo:m_start])
        pre = _ADMIN_PREFIX.search(lead[: len(lead) - len(head)]) if lead.endswith(head) else None
        if pre is None:
            return True, None
        stem = pre.group(0) + stem
    return True, stem


# a government office ends the words before the kind: "环保局平台", "教育厅网站" (whom one writes to)
_GOV_OFFICE = re.compile(r"(?:局|厅|委|政府|部门)$")
# an affiliated body's type ("附一医院" = the first affiliated hospital) and the university it belongs to
_AFFILIATED = re.compile(r"附(?:属|[一二三四五六七八九])")
_PARENT = re.compile(r"([\u4e00-\u9fff]{2,8})(?:大学|学院)$")
_INSTITUTIONS = frozenset(["学院", "大学", "中学", "小学", "幼儿园", "学校", "医院", "卫生院", "驾校"])
_ADMIN_PREFIX = re.compile(r"(?:[A-Za-z]\d{0,2}|[\u4e00-\u9fff]{2,3})[省市区县]$")


def _type_only(head: str) -> bool:
    """Ordinary words of two or more characters only (经济, 职业技术, 理工): what a school or
    hospital teaches or is, not who it is. One-character pieces (湾田 = 湾 + 田) are names jieba
    does not know."""
    import rjieba

    tags = rjieba.tag(head)
    return all(w in _TYPE_WORDS or (len(w) >= 2 and _has_word(w) and t not in _PROPER) for w, t in tags)


# what a school or hospital is, which jieba tags as a name or a number (外国语 nz, 师范 nr, 中医药 nt,
# 第一 m): "外国语学校", "第一人民医院" without their city are types too
_TYPE_WORDS = frozenset(
    [
        "外国语",
        "师范",
        "中医药",
        "中西医",
        "中西",
        "结合",
        "医保",
        "实验",
        # what kind of school or hospital, which jieba tags as a name or an abbreviation
        "中医",
        "康复",
        "中小学",
        "中小学校",
        "中等职业",
        "普惠",
        "普惠性",
        "普通",
        "高等",
        "民办",
        "公办",
        "全日制",
        "九年制",
        "妇幼",
        "附属",
        "第一",
        "第二",
        "第三",
        "第四",
        "第五",
        "第六",
        "第七",
        "第八",
        "第九",
    ]
)


_org_decision_cached = lru_cache(maxsize=200_000)(_org_decision)


# word classes a name does not contain (jieba tags): verbs, adverbs, prepositions, conjunctions,
# particles, pronouns, place/direction and time words, numerals and measures
_STOP_TAGS = frozenset(
    [
        "v",
        "vd",
        "vn",
        "d",
        "p",
        "c",
        "u",
        "ul",
        "uj",
        "uz",
        "ug",
        "uv",
        "ud",
        "r",
        "f",
        "s",
        "t",
        "m",
        "q",
        "y",
        "e",
        "o",
        "ad",
    ]
)


def _name_tail(head: str) -> str:
    """The name at the end of ``head``: words from the right up to the first verb, adverb, pronoun,
    direction … ("楼下美发" → "美发", "估计要开理发" → "", "北京交通" stays); digits and Latin letters
    belong to names ("58")."""
    import rjieba

    toks = rjieba.tag(head)
    keep: list[str] = []
    for w, tag in reversed(toks):
        # a one-character word stops the name only if a cut would ("安信通": 通 is tagged a verb)
        if tag in _STOP_TAGS and not w.isascii() and (len(w) > 1 or w in _TAIL_STOP):
            break
        keep.append(w)
    tail = "".join(reversed(keep))
    if len(tail) < 2 and toks and toks[0][1] in _PROPER and len(head) <= 6:
        return head  # a brand that starts with a proper name ("金诚优选": 优选 is tagged a verb)
    return tail


_PROPER = frozenset(["nr", "ns", "nz", "nt", "nrt", "nrfg", "j"])


def _all_common(head: str) -> bool:
    """Every word of ``head`` is an ordinary dictionary word (no proper name, no unknown word)."""
    import rjieba

    return all(_has_word(w) and t not in _PROPER for w, t in rjieba.tag(head))


def _common_word(head: str) -> bool:
    """One ordinary dictionary word (not a proper name): 烧烤, 手机, 装修, 物流, 配套."""
    import rjieba

    tags = rjieba.tag(head)
    return (
        len(tags) == 1
        and tags[0][1] not in ("nr", "ns", "nz", "nt", "nrt", "nrfg", "eng", "j")
        and _has_word(head)
    )


def merge_variants(keys: set[str]) -> dict[str, str]:
    """Keys that are another key with ordinary words of the sentence in front, mapped to it.

    Text without punctuation (exports whose stopwords were removed) runs the words before a name
    into it: "达成共识鑫霖公司", "尊重诉求原则鑫霖公司" give the keys 共识鑫霖 and 原则鑫霖 beside
    the 鑫霖 other messages name. Where the names begin varies from message to message; where they
    end does not. A key whose front part is only ordinary dictionary words (no proper name, no
    unknown word: :func:`_all_common`) and whose rest is itself a key, and not one ordinary word
    (办法, 交流), becomes that key (the longest such rest). "楚雅附一医院" keeps its name: 楚雅 is not an ordinary word."""
    out: dict[str, str] = {}
    for k in keys:
        for i in range(1, len(k) - 1):  # the rest keeps two characters at least
            rest = k[i:]
            if rest in keys and _all_common(k[:i]) and not _common_word(rest):
                out[k] = rest
                break
    # a rest may itself be a variant ("在办分校雅礼中学" → "办分校雅礼中学" → "雅礼中学")
    for k, r in out.items():
        while r in out:
            r = out[r]
        out[k] = r
    return out


def case_words(text: str) -> list[str]:
    return sorted(set(_CASE_RE.findall(text or "")))


@lru_cache(maxsize=1)
def gazetteer_place_names() -> frozenset[str]:
    """Community names people write ("多福巷", "多福巷社区", "七里渠南村"), from the gazetteer's aliases
    of community level with at least 3 characters (two-character stems are ordinary words too)."""
    from triage.geo import get_gazetteer

    gaz = get_gazetteer()
    out = set()
    for a in gaz._aliases.values():  # noqa: SLF001 - the aliases are the gazetteer's own public data
        if len(a.text) >= 3 and any(r.level == "community" for r in a.readings):
            out.add(a.text)
    return frozenset(out)


@lru_cache(maxsize=1)
def community_aliases() -> frozenset[str]:
    """Every community alias of the gazetteer (2+ characters): a cut that dropped the start of one
    ("六郎庄" → "郎庄") is undone by :func:`extend_to_alias`."""
    from triage.geo import get_gazetteer

    gaz = get_gazetteer()
    return frozenset(a.text for a in gaz._aliases.values() if any(r.level == "community" for r in a.readings))  # noqa: SLF001


def extend_to_alias(text: str, start: int, end: int, suffix_end: int | None = None) -> int:
    """The start of a community alias that ends where the name's head ends (``end``), or with its
    suffix (``suffix_end``: "镇岗南里" cut at 镇), and begins up to 8 characters before ``start``
    ("天通北苑第二东" cut at 二); else ``start``."""
    tails = _alias_tails()
    if start < 1:
        return start
    # most candidates: the character before is no alias's continuation
    p1 = text[start - 1 : end]
    p2 = text[start - 1 : suffix_end] if suffix_end else ""
    if (p1 and p1 not in tails) and (not suffix_end or (p2 and p2 not in tails)):
        return start
    aliases = community_aliases()
    # walked outwards: a piece that is no alias's ending cannot grow into an alias, so most
    # candidates stop after one look-up; the furthest start that is an alias wins (as from 8 down)
    best = start
    alive = [True, bool(suffix_end)]
    for k in range(1, 9):
        s0 = start - k
        if s0 < 0:
            break
        for n, stop in enumerate((end, suffix_end)):
            if not alive[n]:
                continue
            piece = text[s0:stop]
            if not piece:
                continue
            if piece in tails:
                if piece in aliases:
                    best = s0
            else:
                alive[n] = False
        if not (alive[0] or alive[1]):
            break
    return best


@lru_cache(maxsize=1)
def _alias_tails() -> frozenset[str]:
    """Every ending of every community alias (the aliases themselves included)."""
    return frozenset(a[i:] for a in community_aliases() for i in range(len(a)))


def trusted_names(
    rows: np.ndarray,
    keys: Iterable[str],
    days: np.ndarray,
    units: np.ndarray | None = None,
    min_tickets: int = 3,
    min_days: int = 2,
    concentration: float = 0.5,
) -> set[str]:
    """Names that can label an event: gazetteer communities, and names the tickets make stable —
    named by ≥ ``min_tickets`` tickets on ≥ ``min_days`` days, and, where ``units`` (the resolver's
    community or street per ticket) are known for at least 3 of them, ≥ ``concentration`` of those in
    one unit. ``rows``/``keys`` are the (ticket row, name) pairs; ``days`` per ticket row."""
    d = pd.DataFrame({"row": rows, "k": list(keys)})
    if d.empty:
        return set()
    d["day"] = np.asarray(days)[d["row"].to_numpy()]
    g = d.groupby("k")
    stat = pd.DataFrame({"n": g["row"].nunique(), "days": g["day"].nunique()})
    ok = (stat["n"] >= min_tickets) & (stat["days"] >= min_days)
    if units is not None:
        d["u"] = np.asarray(units, dtype=object)[d["row"].to_numpy()]
        du = d.dropna(subset=["u"])
        if len(du):
            per = du.groupby(["k", "u"]).size()
            top = per.groupby(level=0).max()
            tot = per.groupby(level=0).sum()
            share = (top / tot).reindex(stat.index)
            located = tot.reindex(stat.index).fillna(0)
            ok &= (located < 3) | (share >= concentration)
    gaz = gazetteer_place_names()
    out = set(stat.index[ok])
    out |= {k for k in stat.index if k in gaz or k + "社区" in gaz}
    return {k for k in out if not is_fragment(k) and not institution_type_only(k)}


def institution_type_only(name: str) -> bool:
    """A school or hospital type that every city has (经济学院, 理工大学, 中医医院): it names no
    place or body without its city before it (see :func:`_org_decision`)."""
    kind = next((k for k in _INSTITUTIONS if name.endswith(k)), None)
    return kind is not None and len(name) > len(kind) and _type_only(name[: -len(kind)])
