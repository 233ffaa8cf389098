"""The workflow table (taxonomy/workflow.yaml) and the access policy: the table is validated on
load, every transition is performed by the one lifecycle.transition, the database holds only the
table's statuses (migration 0005), and a new status or transition is one edit in the file."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text

from tests.test_api_support import WANGJING, WANSHOULU, seed_item
from triage.taxonomy import TaxonomyError

REPO = Path(__file__).resolve().parent.parent
WORKFLOW = REPO / "taxonomy" / "workflow.yaml"


def _table() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def _write(tmp_path: Path, data: dict) -> Path:
    p = tmp_path / "workflow.yaml"
    p.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return p


def test_the_shipped_table_loads_and_derives_what_used_to_be_copied():
    from triage.workflow import load_workflow

    wf = load_workflow(WORKFLOW)
    assert wf.codes[:2] == ("pending_dispatch", "dispatched")
    assert wf.name("returned") == "退单" and wf.open311("callback") == "closed"
    assert wf.detailed("in_progress") == "IN_PROCESS"
    assert set(wf.open_statuses) == {
        "pending_dispatch",
        "dispatched",
        "acknowledged",
        "in_progress",
        "returned",
    }
    assert wf.starts("recategorize") == wf.codes  # "*"
    assert (
        wf.status_for_word("已结案") == "closed" and wf.status_for_word("派单") is None
    )  # not a closing word
    now = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    late = now - dt.timedelta(hours=1)
    # the one overdue rule: open work past its deadline (a closed or fixed item never is)
    assert wf.is_overdue("returned", late, now) and not wf.is_overdue("closed", late, now)
    assert not wf.is_overdue("fixed", late, now) and not wf.is_overdue("dispatched", now, now)
    decide = wf.transition("decide")
    assert (decide.from_, decide.to, [r.value for r in decide.roles]) == (
        ["pending_dispatch", "returned"],
        "dispatched",
        ["admin"],
    )
    assert decide.requires == ["street_code", "category"] and decide.note == "optional"


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda d: d["transitions"][0].update({"from": ["dispatchd"]}),
            "transitions #1 (acknowledge), field 'from'",
        ),
        (lambda d: d["transitions"][1].update({"to": "done"}), "transitions #2 (update), field 'to'"),
        (
            lambda d: d["transitions"][2].update({"roles": ["clerk"]}),
            "transitions #3 (resolve), field 'roles.0'",
        ),
        (
            lambda d: d["transitions"][0].update({"sets": ["signed_at"]}),
            "transitions #1 (acknowledge), field 'sets'",
        ),
        (
            lambda d: d["transitions"][3].update({"effect": "teleport"}),
            "transitions #4 (return), field 'effect'",
        ),
        (
            lambda d: d["statuses"][0].update({"open311": "pending"}),
            "statuses #1 (pending_dispatch), field 'open311'",
        ),
        (lambda d: d["statuses"][1].update({"colour": "red"}), "statuses #2 (dispatched), field 'colour'"),
        (lambda d: d["statuses"].append(dict(d["statuses"][0])), "duplicate status 'pending_dispatch'"),
    ],
)
def test_a_broken_table_names_file_entry_and_field(tmp_path, change, message):
    from triage.workflow import load_workflow

    data = _table()
    change(data)
    p = _write(tmp_path, data)
    with pytest.raises(TaxonomyError) as exc:
        load_workflow(p)
    assert str(p) in str(exc.value) and message in str(exc.value), str(exc.value)


def test_lifecycle_implements_every_effect_the_table_may_name():
    from triage import lifecycle, workflow

    assert set(lifecycle.EFFECTS) == set(workflow.EFFECTS)


def test_the_database_refuses_a_status_not_in_the_table_and_0005_goes_down_and_up(db):
    """Migration 0005 on both databases: before it any string was stored; after it (and again
    after a downgrade and upgrade) only the table's statuses are."""
    from sqlalchemy.exc import IntegrityError

    from triage.store import get_engine, upgrade
    from triage.store.db import downgrade

    it = seed_item(WANGJING)
    with pytest.raises(IntegrityError), get_engine().begin() as c:
        c.execute(text("UPDATE queue_items SET status = 'resolvd' WHERE id = :i"), {"i": it["id"]})
    downgrade(revision="0004")
    with get_engine().begin() as c:
        c.execute(text("UPDATE queue_items SET status = 'fixed' WHERE id = :i"), {"i": it["id"]})
        assert "workflow_statuses" not in {r[0] for r in c.execute(text(_TABLES[db]))}
    upgrade()
    with get_engine().begin() as c:
        names = dict(c.execute(text("SELECT code, name FROM workflow_statuses")).all())
    assert names["returned"] == "退单" and len(names) == 8
    with pytest.raises(IntegrityError), get_engine().begin() as c:
        c.execute(text("UPDATE queue_items SET status = 'cancelled' WHERE id = :i"), {"i": it["id"]})


_TABLES = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'table'",
    "postgresql": "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()",
}


def test_a_new_status_and_transition_are_one_edit_of_the_table(db, tmp_path, monkeypatch):
    """Add 挂起 on_hold and a 'hold' action (street or admin, from in_progress, note required):
    `db upgrade` lets the database take it and lifecycle.transition performs it; nothing else."""
    from triage import lifecycle
    from triage.auth import Principal, Role
    from triage.config import reset_settings
    from triage.store import upgrade
    from triage.workflow import clear_cache

    tax = tmp_path / "taxonomy"
    shutil.copytree(REPO / "taxonomy", tax)
    data = _table()
    data["statuses"].append(
        {
            "code": "on_hold",
            "name": "挂起",
            "open311": "open",
            "detailed": "ON_HOLD",
            "kind": "open",
            "queue": None,
        }
    )
    data["transitions"].append(
        {"action": "hold", "name": "挂起", "from": ["in_progress"], "to": "on_hold", "roles": ["street", "admin"],
         "note": "required", "note_label": "a reason to hold"}
    )  # fmt: skip
    _write(tax, data)
    monkeypatch.setenv("TRIAGE_TAXONOMY_DIR", str(tax))
    reset_settings()
    clear_cache()
    upgrade()
    clerk = Principal(1, "clerk", Role.street, WANGJING)
    it = seed_item(WANGJING)
    lifecycle.acknowledge(it["id"], 1, clerk)
    lifecycle.add_update(it["id"], 2, clerk, "处理中")
    with pytest.raises(lifecycle.LifecycleError, match="a reason to hold"):
        lifecycle.transition("hold", it["id"], 3, clerk)
    row = lifecycle.transition("hold", it["id"], 3, clerk, note="等待业主")
    assert (row["status"], row["version"], row["queue"]) == ("on_hold", 4, "street")
    assert lifecycle.events(it["id"], clerk)[-1]["action"] == "hold"
    clear_cache()


def test_transition_refuses_missing_inputs_and_unknown_actions(db):
    from triage import lifecycle
    from triage.auth import Principal, Role

    admin = Principal(1, "admin", Role.admin, None)
    it = seed_item(None)  # pending_dispatch in the centre's queue
    with pytest.raises(lifecycle.LifecycleError, match="category is required"):
        lifecycle.transition("decide", it["id"], 1, admin, street_code=WANSHOULU)
    with pytest.raises(lifecycle.LifecycleError, match="unknown action"):
        lifecycle.transition("teleport", it["id"], 1, admin)
    row = lifecycle.decide(it["id"], 1, admin, WANSHOULU, "群租房", note="审核")
    assert (row["status"], row["queue"], row["street_code"], row["category"]) == (
        "dispatched",
        "street",
        WANSHOULU,
        "group_rental",
    )
    assert row["district_code"] == "110108" and row["lead_unit"]


def test_default_pii_key_is_refused_only_on_postgresql(env, monkeypatch):
    from triage.config import ConfigError, Settings

    Settings(database_url="sqlite:///x.db").require_production_secrets()  # a laptop: fine
    Settings(database_url="postgresql+psycopg://h/db", pii_salt="s3cret").require_production_secrets()
    with pytest.raises(ConfigError, match="set TRIAGE_PII_SALT"):
        Settings(database_url="postgresql+psycopg://h/db").require_production_secrets()


def test_the_api_server_will_not_start_on_postgresql_with_the_default_pii_key(env, tmp_path):
    import os
    import subprocess
    import sys

    from tests.conftest import PG_URL
    from tests.test_api_support import free_port

    envs = {k: v for k, v in os.environ.items() if k != "TRIAGE_PII_SALT"}
    envs["TRIAGE_DATABASE_URL"] = PG_URL
    proc = subprocess.run(
        [sys.executable, "-m", "uvicorn", "triage.api.app:asgi_app", "--factory", "--port", str(free_port())],
        cwd=REPO, env=envs, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "TRIAGE_PII_SALT is the public default" in proc.stderr


def test_labels_asset_is_announced_once_enough_new_labels_arrived(db):
    from triage.assets import new_labels
    from triage.labels import record_correction

    items = [seed_item(WANGJING) for _ in range(3)]
    record_correction(items[0]["ticket_id"], "group_rental", "ana")
    assert new_labels(2) == {"new_labels": 1, "announce": False}
    record_correction(items[1]["ticket_id"], "group_rental", "ana")
    assert new_labels(2) == {"new_labels": 2, "announce": True}
    assert new_labels(1) == {"new_labels": 0, "announce": False}  # announced labels are not re-counted
    record_correction(items[2]["ticket_id"], "sanitation", "ana")
    assert new_labels(1) == {"new_labels": 1, "announce": True}
