"""`triage model …`: train, evaluate, predict, list, show, promote."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from triage.cli import beijing, console, err_console, handle_errors, new_typer, rounded

app = new_typer()

InputOpt = Annotated[Path, typer.Option("--input", help="CSV, JSONL, Parquet or XLSX file")]
TextCols = Annotated[
    list[str], typer.Option("--text-col", help="text column; repeat to join several in order")
]
TitleCol = Annotated[str | None, typer.Option("--title-col", help="optional title column")]
LabelCol = Annotated[str, typer.Option("--label-col", help="column with the true label")]


def _load_xy(path: Path, text_cols: list[str], title_col: str | None, label_col: str | None):
    from triage.tables import join_text, read_table, require_columns

    if label_col and (label_col in text_cols or label_col == title_col):
        raise typer.BadParameter(f"--label-col {label_col!r} is also a text or title column")
    df = read_table(path)
    require_columns(
        df, [*text_cols, *([title_col] if title_col else []), *([label_col] if label_col else [])], str(path)
    )
    texts = join_text(df, text_cols)
    titles = df[title_col].fillna("").astype(str) if title_col else None
    labels = df[label_col] if label_col else None
    return df, titles, texts, labels


def _load_for_use(model: Path):
    """Load a model for evaluate / predict; a builtin model from another taxonomy version still
    runs (to compare old models), with a warning, as its codes may no longer mean the same."""
    from triage.classify.registry import load_model

    loaded = load_model(model)
    if problem := loaded.taxonomy_mismatch():
        err_console.print(f"warning: {problem}", highlight=False)
    return loaded


def _matrix(titles, texts) -> np.ndarray:
    """(n, 2) [title, text] rows, as the estimator takes them."""
    t = titles.to_numpy(dtype=object) if titles is not None else np.full(len(texts), "", dtype=object)
    return np.column_stack([t, texts.to_numpy(dtype=object)])


def _parse_weights(items: list[str]) -> dict[str, float]:
    """``["tipdm-real=6", …]`` → ``{"tipdm-real": 6.0}``; a bad item is a usage error."""
    out: dict[str, float] = {}
    for item in items:
        src, sep, w = item.rpartition("=")
        try:
            value = float(w)
        except ValueError:
            value = float("nan")
        if not sep or not src.strip() or not (value > 0 and value != float("inf")):
            raise typer.BadParameter(f"--weight {item!r}: expected SOURCE=W with W a positive number")
        if src.strip() in out:
            raise typer.BadParameter(f"--weight: source {src.strip()!r} given twice")
        out[src.strip()] = value
    return out


@app.command()
@handle_errors
def train(
    input: InputOpt,
    text_col: TextCols,
    label_col: LabelCol,
    out: Annotated[Path, typer.Option("--out", help="model directory to create (its name is the version)")],
    title_col: TitleCol = None,
    taxonomy: Annotated[
        str, typer.Option(help="builtin: labels must be the 29 categories; none: any labels")
    ] = "builtin",
    seed: Annotated[int, typer.Option(help="random seed", min=0, max=2**32 - 1)] = 0,
    min_class_size: Annotated[int, typer.Option(help="classes smaller than this are an error…", min=1)] = 5,
    merge_rare_into: Annotated[str | None, typer.Option(help="…unless merged into this label")] = None,
    promote: Annotated[bool, typer.Option(help="make it the champion (only for builtin models)")] = False,
    overwrite: Annotated[
        bool, typer.Option(help="replace an existing --out directory (versions are otherwise written once)")
    ] = False,
    source_col: Annotated[
        str | None, typer.Option("--source-col", help="column naming each row's source (for --weight)")
    ] = None,
    weight: Annotated[
        list[str] | None,
        typer.Option(
            "--weight",
            help="SOURCE=W: rows whose --source-col is SOURCE count W times (others 1); repeatable",
        ),
    ] = None,
    generated_source: Annotated[
        list[str] | None,
        typer.Option(
            "--generated-source",
            help="rows whose --source-col is this are generated text; the auto-dispatch threshold "
            "must also reach the target precision on the other (real) rows; repeatable",
        ),
    ] = None,
) -> None:
    """训练模型 Train a classifier; prints internal validation metrics and writes the model + card."""
    from triage.classify import registry
    from triage.classify.train import MIN_REAL_FOR_THRESHOLD, prepare, train_model

    # refuse what would fail after minutes of training, before training
    registry.check_new_model_dir(out, overwrite=overwrite)
    if overwrite and registry.is_champion_dir(out) and not promote:
        raise typer.BadParameter(
            f"{out} is the champion: replacing it would change the nightly model without promotion — "
            "train a new version and `triage model promote` it, or pass --promote to replace it knowingly"
        )
    if promote:
        if taxonomy != "builtin":
            raise typer.BadParameter("only models on the built-in taxonomy can be champion")
        if out.parent.resolve() != registry.models_dir().resolve():
            raise typer.BadParameter(f"--promote needs --out inside {registry.models_dir()}")
    weights = _parse_weights(weight or [])
    if (weights or generated_source) and not source_col:
        raise typer.BadParameter(
            "--weight and --generated-source need --source-col (the column the sources are read from)"
        )
    df, titles, texts, labels = _load_xy(input, text_col, title_col, label_col)
    if source_col:
        from triage.tables import require_columns

        require_columns(df, [source_col], str(input))
    data = prepare(
        titles,
        texts,
        labels,
        taxonomy_mode=taxonomy,
        min_class_size=min_class_size,
        merge_rare_into=merge_rare_into,
        sources=df[source_col] if source_col else None,
        weights=weights,
        generated_sources=tuple(generated_source or ()),
    )
    if data.dropped_empty:
        console.print(f"skipped {len(data.dropped_empty)} rows with empty text or label")
    if data.duplicate_rows:
        rows = ", ".join(str(i + 1) for i in data.duplicate_rows[:10])  # data rows, the first is 1
        console.print(
            f"warning: {len(data.duplicate_rows)} rows repeat an earlier row exactly (title, text and label) "
            f"and are counted once (they would inflate the internal validation); data rows {rows}"
            + (" …" if len(data.duplicate_rows) > 10 else ""),
            highlight=False,
        )
    with console.status(f"training on {len(data.y)} rows …"):
        est, card = train_model(data, taxonomy_mode=taxonomy, seed=seed, source=str(input), version=out.name)
    registry.save_model(est, card, out, overwrite=overwrite)
    m = card["metrics"]
    if data.weighting:
        console.print(
            "row weights: "
            + ", ".join(f"{k} ×{v:g}" for k, v in data.weighting["weights"].items())
            + f" (other sources ×1, scaled to mean 1; by column {source_col!r})",
            highlight=False,
        )
    console.print(
        f"model {card['version']} → {out}\n"
        f"internal validation (n={m['n']}): accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}, "
        f"top-3 {m['top3_accuracy']:.4f}\n"
        f"auto-dispatch threshold {card['threshold']}: coverage {card['coverage']:.1%} at precision "
        f"{card['precision_at_threshold']} (target {card['target_precision']}); trained in {card['train_seconds']} s",
        highlight=False,
    )
    basis = card["threshold_basis"]
    if "real_validation_rows" in basis:
        console.print(
            f"real (not generated) validation rows: {basis['real_validation_rows']}"
            + (
                f"; threshold on them alone {basis['real_rows_alone']}"
                if "real_rows_alone" in basis
                else f" (< {MIN_REAL_FOR_THRESHOLD}: threshold from all rows)"
            )
            + (
                f"; at {card['threshold']}: coverage {basis['real_coverage']:.1%}, precision {basis['real_precision']}"
                if basis.get("real_precision") is not None
                else ""
            ),
            highlight=False,
        )
    if promote:
        registry.promote(out.name)
        console.print(f"champion is now {registry.champion_version()}")


@app.command()
@handle_errors
def evaluate(
    model: Annotated[Path, typer.Option("--model", help="model directory or version")],
    input: InputOpt,
    text_col: TextCols,
    label_col: LabelCol,
    title_col: TitleCol = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    allow_unknown_labels: Annotated[
        bool,
        typer.Option(
            "--allow-unknown-labels",
            help="score rows whose label the model never predicts (as errors) instead of refusing "
            "允许模型不认识的标签（计为错误）",
        ),
    ] = False,
) -> None:
    """评估模型 Evaluate a model on labelled data: accuracy, macro-F1, per-class precision/recall/F1.

    Labels the model cannot predict are refused (exit 1) unless --allow-unknown-labels."""
    from triage.classify.registry import ModelError
    from triage.classify.train import metrics
    from triage.ingest.readers import InputFileError

    loaded = _load_for_use(model)
    _, titles, texts, labels = _load_xy(input, text_col, title_col, label_col)
    keep = labels.fillna("").astype(str).str.strip() != ""
    if not keep.any():
        raise InputFileError(f"{input}: no row has a label in column {label_col!r} ({len(labels)} rows)")
    if not keep.all():
        err_console.print(
            f"{input}: {int((~keep).sum())} rows without a label in {label_col!r} are not scored"
        )
    X = _matrix(titles[keep] if titles is not None else None, texts[keep])
    y = labels[keep].astype(str).str.strip().to_numpy()
    if loaded.taxonomy == "builtin":
        from triage.taxonomy import load_taxonomy

        tax = load_taxonomy()
        y = np.array([tax.code_for(v) or v for v in y], dtype=object)
    # labels the model cannot predict count as errors; say so rather than print a silent 0.0
    known = set(map(str, loaded.estimator.classes_))
    unknown = Counter(v for v in y if v not in known)
    if unknown:
        listed = ", ".join(f"{k!r} ({n})" for k, n in unknown.most_common(20))
        if not allow_unknown_labels:  # a score against labels it cannot give is not an evaluation
            raise ModelError(
                f"{input}: {sum(unknown.values())} of {len(y)} rows have labels model {loaded.version} never "
                f"predicts: {listed}; map them to its labels, or pass --allow-unknown-labels to score "
                "them as errors"
            )
        err_console.print(
            f"warning: {sum(unknown.values())} of {len(y)} rows have labels this model never predicts "
            f"(scored as errors): {listed}",
            highlight=False,
        )
    t0 = time.perf_counter()
    pred = loaded.estimator.predict(X)
    seconds = time.perf_counter() - t0
    m = metrics(y, pred)
    m["seconds"] = round(seconds, 3)
    m["model"] = loaded.version
    m["unknown_labels"] = dict(unknown.most_common())
    m["unlabeled_rows_skipped"] = int((~keep).sum())
    if as_json:
        print(json.dumps(m, ensure_ascii=False))
        return
    console.print(
        f"{loaded.version} on {input} (n={m['n']}): accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f} in {seconds:.2f} s",
        highlight=False,
    )
    console.print(_per_class_table(m["per_class"], loaded.taxonomy == "builtin", Counter(map(str, pred))))


def _per_class_table(per_class: dict, builtin: bool, predicted: Counter):
    """Classes with examples in the file, in a Rich table (it aligns by display width, so Chinese
    labels keep the columns straight); classes only predicted are named below it, not scored."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    names = {}
    if builtin:
        from triage.taxonomy import load_taxonomy

        names = {c.code: c.name for c in load_taxonomy().categories.values()}
    table = Table(box=None, pad_edge=False, show_edge=False)
    table.add_column("class 类别")
    if builtin:
        table.add_column("名称")
    for col in ("P", "R", "F1", "n"):
        table.add_column(col, justify="right")
    absent = []
    for cls, pc in sorted(per_class.items()):
        if not pc["support"]:
            absent.append(cls)
            continue
        cells = [f"{pc['precision']:.3f}", f"{pc['recall']:.3f}", f"{pc['f1']:.3f}", str(pc["support"])]
        table.add_row(cls, *([names.get(cls, "")] if builtin else []), *cells)
    parts: list = [table]
    if absent:
        parts.append(
            Text(
                "predicted but absent from the file (not scored) 文件中无样本: "
                + ", ".join(f"{c} ×{predicted[c]}" for c in absent)
            )
        )
    return Group(*parts)


@app.command()
@handle_errors
def predict(
    model: Annotated[Path, typer.Option("--model", help="model directory or version")],
    input: InputOpt,
    text_col: TextCols,
    out: Annotated[Path, typer.Option("--out", help="output file (CSV/JSONL/Parquet/XLSX)")],
    title_col: TitleCol = None,
) -> None:
    """预测 Predict: label, confidence, top-3 and needs_review for every row."""
    from triage.classify.train import predict_frame
    from triage.ingest.readers import InputFileError
    from triage.tables import check_output_path, write_table

    check_output_path(out)  # before the work, not after it
    loaded = _load_for_use(model)
    df, titles, texts, _ = _load_xy(input, text_col, title_col, None)
    if df.empty:
        raise InputFileError(f"{input}: no rows to predict")
    X = _matrix(titles, texts)
    pred = predict_frame(loaded.estimator, X, loaded.threshold)
    pred["top3"] = pred["top3"].map(lambda t: json.dumps([[c, p] for c, p in t], ensure_ascii=False))
    clash = [c for c in pred.columns if c in df.columns]
    if clash:  # e.g. predicting again on an earlier output: the new prediction replaces the old
        err_console.print(f"{input}: column(s) {', '.join(map(repr, clash))} replaced by this prediction")
    result = df.drop(columns=clash).reset_index(drop=True).join(pred)
    write_table(result, out)
    console.print(f"{len(result)} predictions → {out} ({int(pred['needs_review'].sum())} need review)")


@app.command("list")
@handle_errors
def list_models() -> None:
    """模型列表 Model versions in models/, the champion marked with *."""
    from triage.classify.registry import list_versions

    for v in list_versions():
        mark = "*" if v["champion"] else " "
        if v["problem"]:
            console.print(f"{mark} {v['version']:28s} unusable: {v['problem']}", highlight=False)
            continue
        n = v["n_train"]
        console.print(
            f"{mark} {v['version']:28s} trained {beijing(v['trained_at'])}  macro-F1 {rounded(v['macro_f1'])}  "
            f"coverage {rounded(v['coverage'], percent=True)}  n={f'{n:,}' if isinstance(n, int) else n}  "
            f"{v['promotion'] or ''}",
            highlight=False,
        )


@app.command()
@handle_errors
def show(version: Annotated[str, typer.Argument(help="version name or directory")]) -> None:
    """模型卡 Print a model's card."""
    from triage.classify.registry import CARD_JSON, CARD_MD, ModelError, _resolve_dir, read_card

    d = _resolve_dir(version)
    if not (d / CARD_JSON).exists() or not (d / CARD_MD).exists():
        raise ModelError(f"{d}: not a model directory (needs {CARD_JSON} and {CARD_MD})")
    try:
        read_card(d / CARD_JSON)
    except ModelError as exc:  # show the card anyway: it is what one reads to find out what is wrong
        err_console.print(f"warning: unusable model: {exc}", highlight=False)
    console.print((d / CARD_MD).read_text(encoding="utf-8"), markup=False, highlight=False)


@app.command()
@handle_errors
def promote(version: Annotated[str, typer.Argument(help="version to make champion")]) -> None:
    """设为冠军模型 Make a version the champion (used by the nightly DAG from its next run)."""
    from triage.classify import registry

    registry.promote(version)
    console.print(f"champion is now {registry.champion_version()}")


@app.command()
@handle_errors
def sign(
    version: Annotated[str, typer.Argument(help="version name or directory of a model you trust")],
) -> None:
    """签名模型 Sign a model with TRIAGE_MODEL_SIGNING_KEY (model.hmac); with the key set, unsigned models are refused."""
    from triage.classify import registry

    console.print(f"signed: {registry.sign_model(version)}", highlight=False)
