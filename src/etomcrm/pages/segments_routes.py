"""The segment pages' routes (3.9.2): the segments with their trend and forecast charts,
one segment's customers, and their CSV exports. Thin handlers: each calls one function
of :mod:`etomcrm.pages.segments_views` in a worker thread and renders its answer."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from etomcrm.db import utcnow
from etomcrm.pages import segments_views as views
from etomcrm.pages.routes import PREFIX, PageRoute, in_transaction, render, signed_in

router: APIRouter = APIRouter(route_class=PageRoute, include_in_schema=False)
SEGMENTS = PREFIX + "/analytics/segments"


def _csv(name: str, text: str) -> Response:
    return Response(
        text,
        200,
        {"Content-Disposition": f'attachment; filename="{name}.csv"', "Cache-Control": "no-store"},
        media_type="text/csv",
    )


@router.get(SEGMENTS)
async def segments(request: Request) -> Response:
    principal = await signed_in(request)

    page = await in_transaction(
        lambda db: views.segments_page(db, principal, utcnow().date()), readonly=True
    )
    return render(request, "analytics_segments.html", {"page": page}, principal=principal)


@router.get(SEGMENTS + ".csv")
async def segments_export(request: Request, report: str = "segments") -> Response:
    principal = await signed_in(request)

    name, text = await in_transaction(
        lambda db: views.segments_csv(db, principal, report, None, utcnow().date()), readonly=True
    )
    return _csv(name, text)


@router.get(SEGMENTS + "/{segment}")
async def segment(segment: str, request: Request, page: int = 1) -> Response:
    principal = await signed_in(request)

    view = await in_transaction(
        lambda db: views.segment_page(db, principal, segment, page, utcnow().date()),
        readonly=True,
    )
    return render(request, "analytics_segment.html", {"view": view}, principal=principal)


@router.get(SEGMENTS + "/{segment}/customers.csv")
async def segment_export(segment: str, request: Request) -> Response:
    principal = await signed_in(request)

    name, text = await in_transaction(
        lambda db: views.segments_csv(db, principal, "customers", segment, utcnow().date()),
        readonly=True,
    )
    return _csv(name, text)
