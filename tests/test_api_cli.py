"""`triage token create|list|revoke`, `triage queue export --street NAME`, `triage queue import-closed`."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from tests.test_api_support import WANGJING, seed_item
from triage.cli import app


def test_token_create_list_revoke(sqlite_db):
    from triage.auth import authenticate, hash_token
    from triage.store import get_engine

    runner = CliRunner()
    r = runner.invoke(
        app, ["token", "create", "--role", "street", "--street", "望京街道", "--name", "望京张三"]
    )
    assert r.exit_code == 0, r.output
    secret = r.stdout.strip().splitlines()[-1]
    assert secret.startswith("t345_")
    p = authenticate(secret)
    assert (p.role, p.street_code, p.name) == ("street", WANGJING, "望京张三")
    with get_engine().connect() as conn:
        stored = conn.exec_driver_sql("SELECT token_hash FROM api_tokens").scalar_one()
    assert stored == hash_token(secret) and secret not in stored  # only the hash is kept
    listing = runner.invoke(app, ["token", "list"])
    assert "望京张三" in listing.output and secret not in listing.output
    assert runner.invoke(app, ["token", "revoke", str(p.token_id)]).exit_code == 0
    assert authenticate(secret) is None
    assert runner.invoke(app, ["token", "revoke", str(p.token_id)]).exit_code == 1  # already revoked
    # usage errors: street token without street, analyst with street, unknown role, unknown street
    for args in (["--role", "street"], ["--role", "analyst", "--street", WANGJING], ["--role", "boss"],
                 ["--role", "street", "--street", "火星街道"]):  # fmt: skip
        assert runner.invoke(app, ["token", "create", *args]).exit_code == 2


def test_queue_export_by_name_and_import_closed(sqlite_db, tmp_path):
    from tests.test_api import _seed_task

    it = seed_item(WANGJING)
    task = _seed_task(WANGJING, "[未诉先办·激增] 望京街道 占道经营：当日 9 件")  # no ticket, no received_at
    runner = CliRunner()
    out = tmp_path / "q.csv"
    r = runner.invoke(app, ["queue", "export", "--street", "望京街道", "--out", str(out)])
    assert r.exit_code == 0, r.output
    exported = pd.read_csv(out, encoding="utf-8-sig", keep_default_na=False)
    assert it["ticket_id"] in set(exported["工单编号 ticket_id"])
    assert exported.loc[exported["编号 id"] == task, "受理时间 received_at"].tolist() == [""]
    f = tmp_path / "closed.csv"
    pd.DataFrame({"ticket_id": [it["ticket_id"]], "status": ["办结"], "satisfaction": ["基本满意"]}).to_csv(
        f, index=False
    )
    r = runner.invoke(app, ["queue", "import-closed", str(f)])
    assert r.exit_code == 0 and "1 updated" in r.output
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"ticket_id": ["NOPE"], "status": ["办结"]}).to_csv(bad, index=False)
    r = runner.invoke(app, ["queue", "import-closed", str(bad)])
    assert r.exit_code == 1 and "NOPE" in r.output
