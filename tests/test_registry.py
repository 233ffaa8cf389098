"""Model registry: secure loading (tampered, untrusted, corrupt, wrong taxonomy), champion and
promotion, and the promotion gate refusing a worse challenger."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from triage.classify import registry
from triage.classify.registry import ModelError


@pytest.fixture(scope="module")
def data():
    from triage.classify.train import prepare
    from triage.synth import generate_tickets

    df = generate_tickets(500, seed=5).tickets
    top = df["category"].value_counts().index[:4]
    df = df[df["category"].isin(top)].reset_index(drop=True)
    return prepare(df["title"], df["text"], df["category"])


def _train(data, version, shuffle=False):
    from triage.classify.train import TrainingData, train_model

    if shuffle:  # a deliberately bad model: labels carry no information about the text
        y = np.random.default_rng(0).permutation(data.y)
        data = TrainingData(data.X, y, data.sha256, [], {})
    return train_model(data, seed=0, version=version, params={"max_features": 20_000})


def test_save_load_promote_round_trip(models, data):
    est, card = _train(data, "v1")
    registry.save_model(est, card, models / "v1")
    assert {p.name for p in (models / "v1").iterdir()} == {"model.skops", "card.json", "card.md"}
    loaded = registry.load_model("v1", expected_taxonomy="builtin")
    assert np.array_equal(loaded.estimator.predict(data.X[:20]), est.predict(data.X[:20]))
    with pytest.raises(ModelError, match="no champion"):
        registry.load_champion()
    registry.promote("v1")
    assert registry.champion_version() == "v1" and registry.load_champion().version == "v1"
    assert [v["version"] for v in registry.list_versions() if v["champion"]] == ["v1"]
    with pytest.raises(ModelError, match="cannot promote"):
        registry.promote("nope")


def test_a_copied_version_is_recorded_by_its_own_name_and_a_rebuild_is_reloaded(models, data):
    import shutil

    est, card = _train(data, "v1")
    registry.save_model(est, card, models / "v1")
    shutil.copytree(models / "v1", models / "v5")  # what promote's own error message suggests
    registry.promote("v5")
    first = registry.load_champion()
    assert first.version == "v5"  # predictions record the champion's name, not the card's "v1"
    # rebuilt in place under the same name (--overwrite --promote): the cache notices
    est2, card2 = _train(data, "v5", shuffle=True)
    registry.save_model(est2, card2, models / "v5", overwrite=True)
    assert registry.load_champion() is not first
    on_disk = json.loads((models / "v5" / "card.json").read_text())["artifact"]["sha256"]
    assert registry.load_champion().card["artifact"]["sha256"] == on_disk != first.card["artifact"]["sha256"]
    # two promotions leave no temporary files behind
    registry.promote("v1")
    assert sorted(p.name for p in models.iterdir()) == ["CHAMPION", "v1", "v5"]


def test_a_version_without_its_artifact_is_listed_as_unusable(models, data):
    est, card = _train(data, "v1")
    registry.save_model(est, card, models / "v1")
    (models / "v1" / "model.skops").unlink()
    (v,) = registry.list_versions()
    assert v["problem"] and "model.skops is missing" in v["problem"]


def test_vocabularies_are_stored_compactly_and_come_back_whole(models, data):
    # one array per vocabulary, not one skops node per term (that made loading take ~25 s)
    import zipfile

    est, card = _train(data, "v1")
    registry.save_model(est, card, models / "v1")
    with zipfile.ZipFile(models / "v1" / "model.skops") as z:
        schema = z.read("schema.json").decode()
    assert len(est.user_words) > 1000
    assert len(schema) < 500_000, f"schema has {len(schema):,} characters: vocabularies stored as nodes?"
    loaded = registry.load_model("v1").estimator
    for (name, a, _), (name2, b, _) in zip(est.vectorizers_, loaded.vectorizers_, strict=True):
        assert name == name2 and a.vocabulary_ == b.vocabulary_ and len(a.vocabulary_) > 100
    assert loaded.user_words == est.user_words and isinstance(loaded.user_words, tuple)
    assert loaded.keyword_groups == est.keyword_groups and len(est.keyword_groups) == 29
    assert loaded.keyword_vectorizer_.vocabulary_ == est.keyword_vectorizer_.vocabulary_
    assert np.array_equal(loaded.keyword_membership_, est.keyword_membership_)
    assert np.array_equal(loaded.predict_proba(data.X), est.predict_proba(data.X))


@pytest.fixture
def saved(models, data) -> Path:
    est, card = _train(data, "v1")
    return registry.save_model(est, card, models / "v1")


def test_tampered_artifact_is_refused(saved):
    art = saved / "model.skops"
    raw = bytearray(art.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    art.write_bytes(bytes(raw))
    with pytest.raises(ModelError, match="does not match the card"):
        registry.load_model(saved)


def _rehash(d: Path) -> None:
    """Make the card's checksum match the artifact, as an attacker who edits both would."""
    card = json.loads((d / "card.json").read_text())
    card["artifact"]["sha256"] = registry._sha256(d / "model.skops")
    (d / "card.json").write_text(json.dumps(card))


def test_corrupt_zip_is_refused_even_with_a_matching_checksum(saved):
    (saved / "model.skops").write_bytes(b"PK\x03\x04 this is not a zip archive")
    _rehash(saved)
    with pytest.raises(ModelError, match="not a readable skops artifact"):
        registry.load_model(saved)


def test_untrusted_types_are_refused(models):
    from sklearn.preprocessing import FunctionTransformer

    evil = FunctionTransformer(func=os.system)  # would hand code execution to whoever wrote the file
    d = registry.save_model(
        evil, {"version": "evil", "taxonomy": {"mode": "none"}, "threshold": 0.5}, models / "evil"
    )
    with pytest.raises(ModelError, match="untrusted types: .*system"):
        registry.load_model(d)


def test_a_crafted_builtin_call_in_a_real_artifact_is_refused_before_loading(saved, tmp_path):
    """A reviewer's attack: add a node that calls builtins.exec to a genuine artifact's schema and
    fix the card's checksum. A prefix allow-list ("builtins.") let it run on load."""
    import zipfile

    art = saved / "model.skops"
    with zipfile.ZipFile(art) as z:
        files = {n: z.read(n) for n in z.namelist()}
    schema = json.loads(files["schema.json"])
    schema["content"]["content"]["payload"] = {
        "__class__": "exec", "__module__": "builtins", "__loader__": "ObjectNode",
        "content": {"__class__": "dict", "__module__": "builtins", "__loader__": "DictNode", "content": {},
                    "key_types": {"__class__": "list", "__module__": "builtins", "__loader__": "ListNode",
                                  "content": []}},
    }  # fmt: skip
    files["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(art, "w") as z:
        for n, b in files.items():
            z.writestr(n, b)
    _rehash(saved)
    with pytest.raises(ModelError, match="untrusted types: builtins.exec"):
        registry.load_model(saved)


def test_model_for_another_taxonomy_version_is_refused(saved):
    card = json.loads((saved / "card.json").read_text())
    card["taxonomy"]["version"] = "2019.1.0"
    (saved / "card.json").write_text(json.dumps(card))
    registry.load_model(saved)  # readable as a file …
    with pytest.raises(ModelError, match="taxonomy version 2019.1.0"):
        registry.load_model(saved, expected_taxonomy="builtin")  # … but not usable as champion


def _edit_card(d: Path, **changes) -> None:
    card = json.loads((d / "card.json").read_text())
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            card[section][field] = value
        else:
            card[section] = value
    (d / "card.json").write_text(json.dumps(card))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"threshold": "abc"}, "'threshold' must be a number between 0 and 1"),
        ({"threshold": 7}, "'threshold' must be a number between 0 and 1"),
        ({"threshold": None}, "'threshold' must be a number between 0 and 1"),
        ({"taxonomy": "builtin"}, "field 'taxonomy' is missing or not an object"),
        ({"taxonomy__labels": ["other", "education"]}, "the card lists labels"),
    ],
)
def test_an_edited_card_is_refused_with_the_field_named(saved, changes, message):
    _edit_card(saved, **changes)
    with pytest.raises(ModelError, match=message):
        registry.load_model(saved)
    # `model list` reads cards only (the label check needs the artifact): a bad card is listed
    # with the reason, not hidden and not a crash
    [entry] = registry.list_versions()
    if "taxonomy__labels" not in changes:
        assert entry["version"] == "v1" and message in entry["problem"]


def test_list_and_show_cope_with_odd_informational_fields(saved):
    from typer.testing import CliRunner

    from triage.cli import app

    _edit_card(saved, metrics=None, data=[])  # informational only: the model stays usable
    [entry] = registry.list_versions()
    assert entry["problem"] is None and entry["macro_f1"] is None and entry["n_train"] is None
    registry.load_model(saved)
    r = CliRunner().invoke(app, ["model", "show", str(saved.parent)])  # a folder, not a model
    assert r.exit_code == 1 and "not a model directory" in r.output


def test_a_card_that_is_not_an_object_is_refused(saved):
    (saved / "card.json").write_text("[1, 2]")
    with pytest.raises(ModelError, match="must be a JSON object"):
        registry.load_model(saved)
    assert "must be a JSON object" in registry.list_versions()[0]["problem"]


def test_promote_takes_only_a_usable_builtin_model_by_version_name(models, data, saved):
    from triage.classify.train import train_model

    outside = models.parent / "elsewhere"
    est, card = _train(data, "v2")
    registry.save_model(est, card, outside)
    for name in (str(outside), "../elsewhere", "v1/../v1"):
        with pytest.raises(ModelError, match="not a path"):
            registry.promote(name)
    assert registry.champion_version() is None
    # a model with its own labels (--taxonomy none) cannot be champion: routing needs the codes
    est7, card7 = train_model(
        data, taxonomy_mode="none", seed=0, version="m7", params={"max_features": 20_000}
    )
    registry.save_model(est7, card7, models / "m7")
    with pytest.raises(ModelError, match="--taxonomy none"):
        registry.promote("m7")
    # nor a model trained on another version of the taxonomy
    _edit_card(saved, taxonomy__version="2019.1.0")
    with pytest.raises(ModelError, match="taxonomy version 2019.1.0"):
        registry.promote("v1")
    assert registry.champion_version() is None
    # and a CHAMPION file edited by hand to a 7-label model is refused by the nightly run
    (models / "CHAMPION").write_text("m7\n")
    with pytest.raises(ModelError, match="m7: trained with --taxonomy none"):
        registry.load_champion()


def test_a_model_directory_is_written_once(models, data, saved):
    est, card = _train(data, "v1")
    with pytest.raises(ModelError, match="already exists; a model version is written once"):
        registry.save_model(est, card, saved)
    registry.promote("v1")
    with pytest.raises(ModelError, match=r"already exists \(it is the champion\)"):
        registry.save_model(est, card, saved)
    registry.save_model(est, card, saved, overwrite=True)  # explicit: `make model` rebuilds in place
    (models / "afile").write_text("x")
    with pytest.raises(ModelError, match="is not a directory"):
        registry.save_model(est, card, models / "afile")


def test_missing_model_directory_is_a_clear_error(models):
    with pytest.raises(ModelError, match="no such model directory"):
        registry.load_model("does-not-exist")


def test_promotion_gate_refuses_a_worse_challenger(data):
    from triage.classify.retrain import promotion_gate
    from triage.classify.train import metrics

    good, _ = _train(data, "good")
    bad, _ = _train(data, "bad", shuffle=True)
    X, y = data.X[:150], data.y[:150]
    labels = sorted(set(y))
    m_good, m_bad = (metrics(y, e.predict(X), labels=labels) for e in (good, bad))
    refused = promotion_gate(m_good, m_bad)
    assert refused["decision"] == "refused" and refused["recall_drops"]
    assert promotion_gate(m_bad, m_good)["decision"] == "promoted"
    assert promotion_gate(m_good, m_good)["decision"] == "promoted"


def test_promotion_gate_thresholds():
    from triage.classify.retrain import promotion_gate

    def m(f1, recalls):
        return {"macro_f1": f1, "per_class": {c: {"recall": r, "support": 10} for c, r in recalls.items()}}

    champ = m(0.90, {"a": 0.9, "b": 0.9})
    assert promotion_gate(champ, m(0.896, {"a": 0.9, "b": 0.9}))["decision"] == "promoted"  # −0.004
    assert promotion_gate(champ, m(0.894, {"a": 0.9, "b": 0.9}))["decision"] == "refused"  # −0.006
    # macro-F1 up, but one class loses 0.06 recall
    r = promotion_gate(champ, m(0.93, {"a": 0.99, "b": 0.84}))
    assert r["decision"] == "refused" and list(r["recall_drops"]) == ["b"]


def test_artifacts_from_before_the_keyword_groups_still_load(data):
    # models saved before keyword groups existed have neither parameter in their state
    from triage.classify.model import TicketClassifier

    est = TicketClassifier(max_features=20_000, calibration_folds=2).fit(data.X[:600], data.y[:600])
    state = est.__getstate__()
    del state["keyword_groups"], state["keyword_weight"]
    old = TicketClassifier.__new__(TicketClassifier)
    old.__setstate__(state)
    assert old.keyword_groups == () and old.keyword_vectorizer_ is None
    assert np.array_equal(old.predict_proba(data.X[:50]), est.predict_proba(data.X[:50]))
