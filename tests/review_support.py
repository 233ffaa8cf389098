"""Seeding centre items for the review-desk tests (no tests here)."""

from __future__ import annotations

from typing import Any

from tests.test_api_support import seed_item

TOP3 = [["street_vending", 0.52], ["group_rental", 0.31], ["sanitation", 0.1]]


def seed_centre(
    *,
    located: str | None = None,
    top3: list | None = None,
    returned_by: list[str] | None = None,
    escalated: bool = False,
    due_in_hours: float = 72,
    text: str = "小区门口有人占道摆摊卖水果，影响通行",
    address: str | None = "朝阳区望京街道花家地西里3号楼",
    channel: str = "phone",
    masked: bool = True,
) -> dict[str, Any]:
    """A centre item as the router (pending_dispatch) or a return (returned) leaves it, with the
    model's prediction stored."""
    from sqlalchemy import update

    from triage.geo import get_gazetteer
    from triage.store import Prediction, QueueItem, Ticket, get_engine

    top3 = TOP3 if top3 is None else top3
    it = seed_item(None, text=text, address=address, category=top3[0][0] if top3 else "street_vending",
                   due_in_hours=due_in_hours, masked=masked)  # fmt: skip
    unit = get_gazetteer().unit(located) if located else None
    vals: dict[str, Any] = {
        "located_street_code": located, "district_code": unit.district_code if unit else None,
        "centre_reason": "分类置信度低 low confidence" if located else "地址未能定位到街乡镇",
    }  # fmt: skip
    if returned_by:
        vals |= {
            "status": "returned", "returned_from": returned_by, "return_count": len(returned_by),
            "escalated": escalated, "centre_reason": f"退单 returned by {returned_by[-1]}: 不属于本街道",
        }  # fmt: skip
    with get_engine().begin() as conn:
        conn.execute(update(QueueItem.__table__).where(QueueItem.id == it["id"]).values(**vals))
        conn.execute(
            update(Ticket.__table__).where(Ticket.ticket_id == it["ticket_id"]).values(channel=channel)
        )
        if top3:
            conn.execute(
                Prediction.__table__.insert(),
                {"ticket_id": it["ticket_id"], "category": top3[0][0], "confidence": top3[0][1], "top3": top3,
                 "needs_review": True, "model_version": "test"},
            )  # fmt: skip
    return {**it, **vals}


def labels_for(ticket_id: str) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from triage.store import Label, get_engine

    with get_engine().connect() as conn:
        q = select(Label.__table__).where(Label.ticket_id == ticket_id)
        return [dict(r) for r in conn.execute(q).mappings()]
