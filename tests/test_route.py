"""Routing decisions (pure function) from the routing table and taxonomy."""

from __future__ import annotations

import datetime as dt

from triage.geo import NONE, Resolution
from triage.route import load_routing, plan_item
from triage.taxonomy import load_taxonomy

T0 = dt.datetime(2026, 11, 20, 1, 0, tzinfo=dt.UTC)  # 09:00 Beijing
WANGJING = Resolution("110105", "110105026", None, 0.95, "address:street")


def ticket(text: str, when: dt.datetime = T0) -> dict:
    return {"ticket_id": "R1", "received_at": when, "title": "", "text": text}


def pred(category: str, needs_review: bool = False) -> dict:
    return {
        "category": category,
        "needs_review": needs_review,
        "top3": [(category, 0.9), ("other", 0.05), ("education", 0.01)],
    }


def plan(text, category, res=WANGJING, needs_review=False, when=T0):
    return plan_item(ticket(text, when), pred(category, needs_review), res, load_taxonomy(), load_routing())


def test_resolved_confident_ticket_goes_to_its_street_with_category_deadline():
    it = plan("小区楼下有人占道摆摊", "street_vending")
    assert (it["queue"], it["street_code"], it["status"]) == ("street", "110105026", "dispatched")
    assert it["lead_unit"] == "street_office" and "urban_management_enforcement" in it["departments"]
    assert it["sla_tier"] == "general" and it["due_at"] == T0 + dt.timedelta(days=7)
    assert it["priority"] == 3


def test_gas_leak_is_escalated_to_two_hours():
    it = plan("楼道里有很重的煤气味，怀疑燃气泄漏", "safety_hazard")
    assert it["sla_tier"] == "emergency" and it["due_at"] == T0 + dt.timedelta(hours=2)
    assert it["priority"] == 1 and "燃气" in it["centre_reason"]


def test_heating_complaint_is_urgent_only_in_heating_season():
    winter = plan("家里暖气不热，室温只有十五度", "property_management")
    summer = plan("家里暖气不热", "property_management", when=dt.datetime(2026, 7, 1, 1, tzinfo=dt.UTC))
    assert winter["sla_tier"] == "urgent" and summer["sla_tier"] == "general"


def test_unresolved_location_goes_to_the_centre_with_reason():
    it = plan("家附近占道摆摊", "street_vending", res=NONE)
    assert it["queue"] == "centre" and it["street_code"] is None and it["status"] == "pending_dispatch"
    assert "location not resolved" in it["centre_reason"]
    assert it["due_at"] is not None


def test_low_confidence_goes_to_the_centre_with_top3():
    it = plan("说不清的问题", "other", needs_review=True)
    assert (
        it["queue"] == "centre"
        and "low confidence" in it["centre_reason"]
        and "education" in it["centre_reason"]
    )
    # no street may act on it, but it still counts for the street it is in (hotspots, trends)
    assert it["street_code"] is None and it["located_street_code"] == WANGJING.street_code
    assert plan("说不清的问题", "other", res=NONE)["located_street_code"] is None


def test_district_override_from_routing_table():
    core = plan(
        "胡同里有日租房",
        "short_term_rental",
        res=Resolution("110101", "110101001", None, 0.9, "address:street"),
    )
    elsewhere = plan("小区里有日租房", "short_term_rental")
    assert "culture_tourism" in core["departments"]
    assert core["departments"] != elsewhere["departments"]
