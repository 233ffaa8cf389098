"""Versioned model artifacts in ``models/``: one directory per version, one champion.

Layout::

    models/
      CHAMPION                 the champion's version name (one line)
      <version>/
        model.skops            the fitted estimator, saved with skops (no arbitrary unpickling)
        card.json              training data summary + hash, taxonomy version, metrics, threshold…
        card.md                the same for people

Loading checks that every type inside the artifact is on an allow-list (scikit-learn, NumPy,
SciPy and this package's own classes) and that the file's SHA-256 matches the card, so a corrupted
artifact fails with a clear message instead of running code. The card sits next to the artifact:
its checksum guards against corruption, not tampering (whoever can replace the artifact can edit
the card). Against tampering, set ``TRIAGE_MODEL_SIGNING_KEY``: models are then signed
(``model.hmac``, an HMAC-SHA256 of the artifact under that secret) when saved or by
``triage model sign``, and a model without a valid signature is refused at load.

A version is a directory name directly under ``TRIAGE_MODELS_DIR``: ``CHAMPION`` naming a path
(``../x``, ``/abs``) or a version directory that is a symlink out of it is refused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import re
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from triage.config import get_settings

ARTIFACT = "model.skops"
CARD_JSON = "card.json"
CARD_MD = "card.md"
CHAMPION_FILE = "CHAMPION"
SIGNATURE = "model.hmac"
# Types a model of ours may hold beyond those skops trusts by default (numpy arrays, builtin
# containers, public scikit-learn estimators). An exact list, never a prefix: "builtins.exec" or
# "numpy.load" in a crafted artifact would otherwise pass as "trusted" and run on load.
TRUSTED_TYPES = frozenset(
    {
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "triage.classify.model.TicketClassifier",
        "triage.classify.nbsvm.NBSVM",
    }
)
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ModelError(RuntimeError):
    """A model that cannot be used: missing, tampered, untrusted, or for another taxonomy."""


@dataclass
class LoadedModel:
    version: str
    directory: Path
    estimator: Any
    card: dict[str, Any]

    @property
    def threshold(self) -> float:
        return float(self.card.get("threshold", 0.0))

    @property
    def taxonomy(self) -> str:
        return self.card.get("taxonomy", {}).get("mode", "builtin")

    def taxonomy_mismatch(self) -> str | None:
        """Why this builtin model does not fit the loaded taxonomy (``None`` if it does, or if
        the model has its own labels)."""
        if self.taxonomy != "builtin":
            return None
        from triage.taxonomy import load_taxonomy

        tax = load_taxonomy()
        trained_on, fp = self.card["taxonomy"].get("version"), self.card["taxonomy"].get("fingerprint")
        if trained_on == tax.version and fp == tax.fingerprint:
            return None
        return (
            f"{self.directory}: trained on taxonomy version {trained_on} ({fp}); the loaded taxonomy is "
            f"{tax.version} ({tax.fingerprint}). Retrain with `triage model train` on the current taxonomy."
        )


def models_dir() -> Path:
    return get_settings().models_dir


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def check_new_model_dir(out_dir: Path, *, overwrite: bool = False) -> None:
    """A model directory is written once: refuse an existing one (a version is immutable; the
    champion or a challenger's card must never be replaced by accident) unless ``overwrite``."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ModelError(f"{out_dir}: exists and is not a directory; choose another --out")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        champ = " (it is the champion)" if is_champion_dir(out_dir) else ""
        raise ModelError(
            f"{out_dir}: already exists{champ}; a model version is written once — choose a new "
            "directory name (it becomes the version), or pass --overwrite to replace it"
        )
    parent = next((p for p in (out_dir, *out_dir.parents) if p.exists()), None)
    if parent is not None and not os.access(parent, os.W_OK):  # say so before minutes of training
        raise ModelError(f"{out_dir}: {parent} is not writable; choose another --out")


def is_champion_dir(d: Path) -> bool:
    v = champion_version()
    return v is not None and d.resolve() == (models_dir() / v).resolve()


def save_model(estimator: Any, card: dict[str, Any], out_dir: Path, *, overwrite: bool = False) -> Path:
    """Write artifact + cards into ``out_dir`` (created; an existing one only with ``overwrite``);
    returns the directory."""
    sio = _skops()

    check_new_model_dir(out_dir, overwrite=overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    artifact = out_dir / ARTIFACT
    sio.dump(estimator, artifact, compression=zipfile.ZIP_DEFLATED)
    card = dict(card)
    card["artifact"] = {"file": ARTIFACT, "sha256": _sha256(artifact), "bytes": artifact.stat().st_size}
    (out_dir / CARD_JSON).write_text(
        json.dumps(card, ensure_ascii=False, indent=2, default=_json_default) + "\n"
    )
    (out_dir / CARD_MD).write_text(render_card_md(card), encoding="utf-8")
    if _signing_key():
        sign_model(out_dir)
    return out_dir


def _signing_key() -> bytes | None:
    key = get_settings().model_signing_key
    return key.get_secret_value().encode() if key else None


def _hmac(artifact: Path, key: bytes) -> str:
    h = hmac.new(key, digestmod=hashlib.sha256)
    with open(artifact, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def sign_model(path: Path | str) -> Path:
    """Sign a model directory's artifact with ``TRIAGE_MODEL_SIGNING_KEY`` (writes ``model.hmac``).
    Sign only a model you trust: the signature vouches for the artifact as it is now."""
    key = _signing_key()
    if key is None:
        raise ModelError("TRIAGE_MODEL_SIGNING_KEY is not set: there is no key to sign with")
    d = _resolve_dir(path)
    artifact = d / ARTIFACT
    if not artifact.exists():
        raise ModelError(f"{d}: not a model directory (needs {ARTIFACT})")
    (d / SIGNATURE).write_text(_hmac(artifact, key) + "\n")
    return d / SIGNATURE


def _check_signature(d: Path, artifact: Path) -> None:
    key = _signing_key()
    if key is None:
        return
    sig_path = d / SIGNATURE
    if not sig_path.exists():
        raise ModelError(
            f"{d}: not signed, and TRIAGE_MODEL_SIGNING_KEY is set; sign a model you trust with "
            "`triage model sign`"
        )
    if not hmac.compare_digest(sig_path.read_text().strip(), _hmac(artifact, key)):
        raise ModelError(
            f"{artifact}: its signature does not match (signed with another key, or the artifact was "
            "replaced); refused"
        )


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (dt.date, dt.datetime)):
        return o.isoformat()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _skops():
    with warnings.catch_warnings():
        # importing skops probes every scipy ufunc name across loaded modules; Airflow's lazy
        # modules emit a DeprecatedImportWarning (a FutureWarning) for each probe
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        import skops.io as sio
    return sio


def load_model(path: Path | str, *, expected_taxonomy: str | None = None) -> LoadedModel:
    """Load a model directory (or a version name under models/) safely. With
    ``expected_taxonomy="builtin"`` (the champion, and a model about to be promoted) it must also
    predict the built-in categories of the current taxonomy version."""
    sio = _skops()
    d = _resolve_dir(path)
    card_path, artifact = d / CARD_JSON, d / ARTIFACT
    if not card_path.exists() or not artifact.exists():
        raise ModelError(f"{d}: not a model directory (needs {CARD_JSON} and {ARTIFACT})")
    _check_signature(d, artifact)  # before anything in the artifact is read
    card = read_card(card_path)
    expected_sha = card["artifact"].get("sha256")
    actual_sha = _sha256(artifact)
    if expected_sha != actual_sha:
        raise ModelError(
            f"{artifact}: checksum {actual_sha[:12]}… does not match the card's {str(expected_sha)[:12]}…; "
            "the artifact was modified or corrupted — retrain or restore it"
        )
    try:
        untrusted = sio.get_untrusted_types(file=artifact)
    except Exception as exc:
        raise ModelError(
            f"{artifact}: not a readable skops artifact ({exc.__class__.__name__}: {exc})"
        ) from None
    bad = [t for t in untrusted if t not in TRUSTED_TYPES]
    if bad:
        raise ModelError(f"{artifact}: refuses to load untrusted types: {', '.join(sorted(bad))}")
    try:
        estimator = sio.load(artifact, trusted=untrusted)
    except Exception as exc:
        raise ModelError(f"{artifact}: cannot be loaded ({exc.__class__.__name__}: {exc})") from None
    classes = [str(c) for c in getattr(estimator, "classes_", [])]
    labels = card["taxonomy"].get("labels")
    if labels is not None and sorted(map(str, labels)) != sorted(classes):
        raise ModelError(
            f"{card_path}: the card lists labels {sorted(map(str, labels))} but the artifact predicts "
            f"{sorted(classes)}; the card was edited or belongs to another model"
        )
    # the directory's name is the version (what CHAMPION and `model list` name); a copied model's
    # card still carries the name it was trained under
    loaded = LoadedModel(d.name, d, estimator, card)
    if expected_taxonomy == "builtin":  # as champion: it must route by the current 29 codes
        if loaded.taxonomy != "builtin":
            raise ModelError(
                f"{d}: trained with --taxonomy {loaded.taxonomy} (labels {', '.join(classes[:10])}); "
                "the champion must predict the built-in categories"
            )
        if problem := loaded.taxonomy_mismatch():
            raise ModelError(problem)
    return loaded


def read_card(card_path: Path) -> dict[str, Any]:
    """A model card, checked for the fields the product acts on: a JSON object with an artifact
    checksum, a taxonomy section and an auto-dispatch threshold between 0 and 1."""
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{card_path}: card is not valid JSON ({exc})") from None
    if not isinstance(card, dict):
        raise ModelError(f"{card_path}: a card must be a JSON object, not {type(card).__name__}")
    for field in ("artifact", "taxonomy"):
        if not isinstance(card.get(field), dict):
            raise ModelError(f"{card_path}: field {field!r} is missing or not an object")
    t = card.get("threshold")
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.0 <= t <= 1.0:
        raise ModelError(f"{card_path}: field 'threshold' must be a number between 0 and 1, not {t!r}")
    return card


def version_dir(version: str, what: str = "version") -> Path:
    """The directory of a version name: a plain name directly under the models folder, never a
    path, and not a symlink leading out of it."""
    root = models_dir()
    if not _VERSION_RE.match(version) or version in (".", ".."):
        raise ModelError(
            f"{what} {version!r} is not a version name under {root} (letters, digits, . _ -; not a path)"
        )
    d = root / version
    if d.resolve().parent != root.resolve():
        raise ModelError(f"{what} {version!r}: {d} leads out of {root} (a symlink to {d.resolve()}); refused")
    return d


def _resolve_dir(path: Path | str) -> Path:
    p = Path(path)
    if p.is_dir():
        return p
    candidate = models_dir() / str(path)
    if _VERSION_RE.match(str(path)) and candidate.is_dir():
        return candidate
    raise ModelError(f"{path}: no such model directory or version under {models_dir()}")


def list_versions() -> list[dict[str, Any]]:
    out = []
    champ = champion_version()
    root = models_dir()
    for d in sorted(root.iterdir()) if root.exists() else []:
        card_path = d / CARD_JSON
        if not card_path.exists():
            continue
        try:
            version_dir(d.name)  # a symlink out of models/ is listed as unusable
            card = read_card(card_path)
            if not (d / ARTIFACT).exists():
                raise ModelError(f"{d / ARTIFACT} is missing")
            actual = _sha256(d / ARTIFACT)
            if card["artifact"].get("sha256") != actual:  # the card lies: load_model would refuse it
                raise ModelError(
                    f"{d / ARTIFACT}: checksum {actual[:12]}… does not match the card's "
                    f"{str(card['artifact'].get('sha256'))[:12]}… (modified or corrupted)"
                )
            if _signing_key():
                _check_signature(d, d / ARTIFACT)
        except ModelError as exc:  # listed, with the reason, rather than hidden
            out.append({"version": d.name, "champion": d.name == champ, "problem": str(exc)})
            continue
        metrics, data, promotion = (_section(card, k) for k in ("metrics", "data", "promotion"))
        out.append(
            {
                "version": d.name,
                "champion": d.name == champ,
                "problem": None,
                "trained_at": card.get("trained_at"),
                "macro_f1": metrics.get("macro_f1"),
                "accuracy": metrics.get("accuracy"),
                "coverage": card.get("coverage"),
                "n_train": data.get("n_train"),
                "promotion": promotion.get("decision"),
            }
        )
    return out


def _section(card: dict[str, Any], name: str) -> dict[str, Any]:
    """An informational part of a card (metrics, data, promotion); {} if absent or malformed."""
    value = card.get(name)
    return value if isinstance(value, dict) else {}


def champion_version() -> str | None:
    f = models_dir() / CHAMPION_FILE
    if not f.exists():
        return None
    v = f.read_text().strip()
    return v or None


def promote(version: str) -> None:
    """Make ``version`` (a directory name under models/) the champion. Only a model the nightly
    run can use qualifies: it loads, predicts the built-in categories and was trained on the
    current taxonomy — the same checks ``load_champion`` makes, made before the switch."""
    if not _VERSION_RE.match(version):
        raise ModelError(
            f"cannot promote {version!r}: give a version name under {models_dir()} (not a path); "
            "copy or train the model there first"
        )
    d = version_dir(version, "cannot promote")
    if not (d / CARD_JSON).exists():
        raise ModelError(f"cannot promote {version!r}: no model directory {d}")
    load_model(d, expected_taxonomy="builtin")  # refuse what the nightly run could not use
    # atomic: readers see the old or the new champion; a temporary file of its own per writer, so
    # two promotions at once cannot interleave their writes
    fd, tmp = tempfile.mkstemp(dir=models_dir(), prefix=CHAMPION_FILE + ".", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write(version + "\n")
    Path(tmp).replace(models_dir() / CHAMPION_FILE)


_CHAMPION_CACHE: dict[tuple[str, str], LoadedModel] = {}


def load_champion() -> LoadedModel:
    """The current champion, loaded once per process (per version)."""
    v = champion_version()
    if v is None:
        raise ModelError(
            f"no champion model: {models_dir() / CHAMPION_FILE} is missing; run `triage model train`"
        )
    version_dir(v, f"{models_dir() / CHAMPION_FILE} names")  # a name under models/, never a path
    try:  # a version rebuilt in place (`--overwrite --promote`) has a new artifact: load it again
        stamp = (models_dir() / v / ARTIFACT).stat().st_mtime_ns
    except OSError:
        stamp = None
    key = (str(models_dir()), v, stamp)
    if key not in _CHAMPION_CACHE:
        _CHAMPION_CACHE[key] = load_model(models_dir() / v, expected_taxonomy="builtin")
    return _CHAMPION_CACHE[key]


def _weighting_lines(w: dict[str, Any] | None) -> list[str]:
    if not w:
        return []
    ws = ", ".join(f"{k} ×{v:g}" for k, v in w.get("weights", {}).items())
    rows = ", ".join(f"{k} {n}" for k, n in w.get("rows_per_source", {}).items())
    return [
        f"- 样本权重 row weights: by column `{w.get('source_column')}`: {ws}, other sources "
        f"×{w.get('default_weight', 1.0):g} (scaled to mean 1); rows: {rows}"
    ]


def _real_text_lines(real: Any) -> list[str]:
    """The card's figures on real citizen text, beside the (mostly generated) validation above."""
    if not isinstance(real, dict) or not real.get("sets"):
        return []
    lines = ["", "## 真实文本指标 Real-text figures (not generated data)", ""]
    if real.get("note"):
        lines += [str(real["note"]), ""]
    lines += ["| 数据 set | 行 rows | 准确率 accuracy | 阈值自动派单 auto-dispatched at threshold | 其精度 precision |",
              "|---|---:|---:|---:|---:|"]  # fmt: skip
    for s in real["sets"]:
        if not isinstance(s, dict):
            continue
        lines.append(
            f"| {s.get('set')} | {s.get('n')} | {s.get('accuracy')} | {s.get('coverage')} | {s.get('precision')} |"
        )
    return lines


def render_card_md(card: dict[str, Any]) -> str:
    m = card.get("metrics", {})
    lines = [
        f"# 模型卡 Model card — {card.get('version')}",
        "",
        f"- 训练时间 trained at: {card.get('trained_at')}",
        f"- 任务 task: {card.get('task', 'ticket category classification')}",
        f"- 分类体系 taxonomy: {card.get('taxonomy', {}).get('mode')} "
        f"version {card.get('taxonomy', {}).get('version')} fingerprint {card.get('taxonomy', {}).get('fingerprint')}",
        f"- 训练数据 training data: {card.get('data', {}).get('source')} — {card.get('data', {}).get('n_rows')} rows, "
        f"sha256 {str(card.get('data', {}).get('sha256'))[:16]}…, {card.get('data', {}).get('n_train')} train / "
        f"{card.get('data', {}).get('n_valid')} validation",
        *_weighting_lines(card.get("data", {}).get("weighting")),
        f"- 随机种子 seed: {card.get('seed')}",
        f"- 参数 parameters: `{json.dumps(card.get('params', {}), ensure_ascii=False)}`",
        "",
        "## 验证集指标 Validation metrics",
        "",
        f"- accuracy **{m.get('accuracy', float('nan')):.4f}**, macro-F1 **{m.get('macro_f1', float('nan')):.4f}**",
        f"- 自动派单阈值 auto-dispatch threshold: {card.get('threshold')} → coverage {card.get('coverage')} "
        f"at precision {card.get('precision_at_threshold')} (target {card.get('target_precision')})",
        "",
        "| class | precision | recall | f1 | support |",
        "|---|---:|---:|---:|---:|",
    ]
    for cls, pc in sorted(m.get("per_class", {}).items()):
        lines.append(
            f"| {cls} | {pc['precision']:.3f} | {pc['recall']:.3f} | {pc['f1']:.3f} | {pc['support']} |"
        )
    lines += _real_text_lines(card.get("real_text"))
    promo = card.get("promotion")
    if promo:
        lines += ["", "## 晋级决定 Promotion decision", "", f"- decision: **{promo.get('decision')}**"]
        for k, v in promo.items():
            if k != "decision":
                lines.append(f"- {k}: {json.dumps(v, ensure_ascii=False, default=str)}")
    lines += ["", "## 库版本 Library versions", ""]
    for k, v in card.get("libraries", {}).items():
        lines.append(f"- {k} {v}")
    return "\n".join(lines) + "\n"
