"""/api/v1/review: the 12345 centre's review desk as an API (admin decides; analysts may read)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from triage import review
from triage.api.common import NO_CONTROL, fast_json, get_item, require_principal
from triage.auth import Principal

router = APIRouter(prefix="/api/v1/review", tags=["centre review desk"])
Who = Annotated[Principal, Depends(require_principal)]
ItemId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Reason = Literal["low_confidence", "no_street", "returned", "escalated"]


class Suggestion(BaseModel):
    category: str
    name: str = Field(description="Chinese name")
    confidence: float | None


class StreetCandidate(BaseModel):
    code: str
    name: str
    district: str


class ReviewItem(BaseModel):
    id: int
    ticket_id: str | None
    version: int
    status: str
    reason: Reason
    category: str | None
    district_code: str | None
    located_street_code: str | None
    due_at: dt.datetime
    received_at: dt.datetime | None
    title: str | None
    text: str | None = Field(description="masked")
    address: str | None
    channel: str | None
    return_count: int
    escalated: bool
    returned_from: list[str] | None
    centre_reason: str | None
    top3: list[Suggestion]
    street_candidates: list[StreetCandidate]


class ReviewPage(BaseModel):
    total: int
    page: int
    page_size: int
    counts: dict[str, int] = Field(description="centre items per reason (unfiltered)")
    items: list[ReviewItem]


class DecideIn(BaseModel):
    version: int = Field(ge=1, description="the item's version you last read")
    category: str = Field(min_length=1, max_length=64, description="category code or Chinese name")
    street_code: str = Field(min_length=1, max_length=12, description="a street/town code of the gazetteer")


class BatchItemIn(DecideIn):
    id: int = Field(ge=1, le=2**31 - 1)


class BatchIn(BaseModel):
    items: list[BatchItemIn] = Field(
        min_length=1, max_length=review.BATCH_LIMIT, description=f"1 to {review.BATCH_LIMIT} items"
    )


class BatchResult(BaseModel):
    id: int
    ok: bool
    status: int = Field(description="200, or the HTTP status this item alone would have had")
    version: int | None
    detail: str | None


class BatchOut(BaseModel):
    decided: int
    failed: int
    results: list[BatchResult]


@router.get("", responses={200: {"model": ReviewPage}})
def review_queue(
    who: Who,
    reason: Reason | None = None,
    category: Annotated[
        str | None, Query(max_length=64, pattern=NO_CONTROL, description="the model's suggestion 1")
    ] = None,
    district: Annotated[str | None, Query(pattern=r"^[0-9]{6}$")] = None,  # ASCII digits only
    channel: Annotated[str | None, Query(max_length=32, pattern=NO_CONTROL)] = None,
    order: Annotated[
        Literal["deadline", "learn"], Query(description="deadline (default) or learn: most instructive first")
    ] = "deadline",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    """The centre queue (pending_dispatch + returned), oldest deadline first, with the model's top-3,
    the resolver's street candidates and why each item is here. Street tokens: 403."""
    total, items = review.review_items(
        who, reason=reason, category=category, district=district, channel=channel, order=order,
        limit=page_size, offset=(page - 1) * page_size,
    )  # fmt: skip
    keep = set(ReviewItem.model_fields)
    return fast_json({
        "total": total, "page": page, "page_size": page_size, "counts": review.reason_counts(),
        "items": [{k: v for k, v in it.items() if k in keep} for it in items],
    })  # fmt: skip


@router.post("/decide-batch", response_model=BatchOut)
def decide_batch(who: Who, body: BatchIn) -> BatchOut:
    """Decide many items; each is its own change, so one failure (409/422) leaves the others done."""
    results = review.decide_batch([it.model_dump() for it in body.items], who)
    ok = sum(r["ok"] for r in results)
    return BatchOut(decided=ok, failed=len(results) - ok, results=[BatchResult(**r) for r in results])


@router.post("/{item_id}/decide")
def decide(who: Who, item_id: ItemId, body: DecideIn) -> Response:
    """Dispatch to ``street_code`` as ``category`` (deadline from the category's SLA tier) and store
    the decision as a label (source ``review``). 409: stale version or already decided (names who);
    422: unknown category or street (named)."""
    review.decide(item_id, body.version, body.category, body.street_code, who)
    return fast_json(get_item(who, item_id))
