"""The loop, visible and closed (SQLite and PostgreSQL): the nightly report's model section counts
auto-dispatch, desk agreement and changes, returns per category and labels since the champion;
retraining takes a review label like an analyst's correction; the active-learning order."""

from __future__ import annotations

import datetime as dt

from tests.review_support import seed_centre
from tests.test_api_support import JIUXIANQIAO, WANGJING, seed_item


def _admin():
    from triage.auth import Principal

    return Principal(1, "operator", "admin", None)


def test_model_loop_counts_and_report_section(db, tmp_path):
    from triage import lifecycle, review
    from triage.auth import Principal
    from triage.report.nightly import write_nightly_report

    street = [seed_item(WANGJING), seed_item(WANGJING)]
    agree, change, wait = (seed_centre(located=WANGJING) for _ in range(3))
    review.decide(agree["id"], 1, "street_vending", WANGJING, _admin())
    review.decide(change["id"], 1, "group_rental", JIUXIANQIAO, _admin())
    lifecycle.return_item(street[1]["id"], 1, Principal(2, "wj", "street", WANGJING), "不是本街道的事")
    from triage.config import get_settings

    night = dt.datetime.now(get_settings().tz).date()  # the report's night is a Beijing date
    loop = review.model_loop(night)
    assert loop["tickets"] == 5 and loop["auto"] == 2
    assert (loop["agreed"], loop["changed"]) == (1, 1)
    assert loop["waiting"] == 2  # the untouched centre ticket and the returned one
    assert loop["returns"] == [{"code": "street_vending", "name": "占道经营", "n": 1}]
    assert loop["labels_since"] == {"review": 2} and loop["agreed_share"] == 0.2
    html = write_nightly_report(night, tmp_path / "r.html").read_text(encoding="utf-8")
    section = html[html.index('id="model-loop"') :]
    assert "中心采纳建议1" in section and "20.0%" in section and "占道经营 1" in section


def test_retraining_takes_a_review_label_over_a_newer_import(db):
    from sqlalchemy import update

    from triage import review
    from triage.labels import labeled_tickets
    from triage.store import Label, get_engine, upsert

    it = seed_centre(located=WANGJING)
    review.decide(it["id"], 1, "group_rental", WANGJING, _admin())
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    with get_engine().begin() as conn:
        upsert(conn, Label.__table__, [{"ticket_id": it["ticket_id"], "category": "sanitation",
               "labeled_by": "file.csv", "source": "import", "labeled_at": later}],
               ["ticket_id", "labeled_by"], ["category", "source", "labeled_at"])  # fmt: skip
        conn.execute(
            update(Label.__table__)
            .where(Label.source == "review")
            .values(labeled_at=later - dt.timedelta(hours=2))
        )
    got = labeled_tickets().set_index("ticket_id")["category"]
    assert got[it["ticket_id"]] == "group_rental"


def test_learn_scores_prefer_unsure_tickets_in_a_crowd():
    from triage.review import learn_scores

    sure = [["a", 0.9], ["b", 0.05]]
    unsure = [["a", 0.4], ["b", 0.38]]
    lonely = [["c", 0.4], ["d", 0.38]]
    s = learn_scores([sure, unsure, unsure, unsure, lonely, sure])
    assert s[1] > s[4] > s[0]  # unsure in a crowd, then unsure alone, then sure
    assert s[2] == s[1] / 2 and s[3] == s[1] / 3  # the k-th of one crowd counts 1/k: no run of alike tickets
    # no stored prediction: the model knows nothing about it, as unsure as can be
    nothing = learn_scores([[], sure])
    assert nothing[0] > nothing[1]


def test_migration_0008_adds_the_centre_index_and_goes_down_again(db):
    from sqlalchemy import inspect

    from triage.store import get_engine
    from triage.store.db import downgrade, upgrade

    def indexes() -> set[str]:
        return {i["name"] for i in inspect(get_engine()).get_indexes("queue_items")}

    assert "ix_queue_centre_review" in indexes()
    downgrade(revision="0009")
    assert "ix_queue_centre_review" not in indexes()
    upgrade()
    assert "ix_queue_centre_review" in indexes()
