"""The console's pages for batches changing hands: offer a batch to another account (its code shown once),
withdraw the offer, accept an offer by pasting its code (from the batch list), and split a batch in two.

The rules live in :mod:`bindery.transfer` and :mod:`bindery.split`; these pages say their outcome in the
form's words: an error beside the field it concerns, labelled as on the page, values kept (never a code)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from bindery import binding, split, transfer
from bindery.access import Action, Actor, owned_batch, require
from bindery.db import session_scope
from bindery.errors import BinderyError, FieldError, NotFound, page_words
from bindery.web import batches, deps, services
from bindery.web.pages import api_status, back, batch_path, check_csrf, logged_in, render, signed_in

router = APIRouter(include_in_schema=False)

OFFER_LABELS = {"to": "Receiving account", "expires": "Code expires after", "note": "Note for the receiver"}
SPLIT_LABELS = {"new_bid": "New BID", "count": "Number of devices to move", "devices": "Device IDs to move"}
EXPIRY_CHOICES = (("1d", "1 day"), ("7d", "7 days"), ("30d", "30 days"), ("90d", "90 days"))
LONG = 20_000  # a form field the rules refuse in their words when too long (a browser may send anything)
DEVICES_LIMIT = 2_000_000  # characters of pasted device ids: 100,000 ids of 20 characters


def _in_page_words(exc: FieldError, labels: dict[str, str]) -> tuple[str, str]:
    name = exc.field if exc.field in labels else next(iter(labels))
    return name, exc.on_page(labels[name])


# ---- offer and withdraw -----------------------------------------------------------------------------------

def _offer_page(request: Request, who: tuple[Actor, str], bid: str, *, values: dict[str, str],
                errors: dict[str, str], problem: str | None = None, status: int = 200) -> Response:
    actor = who[0]
    require(actor, Action.TRANSFER)
    with session_scope(deps.settings_of(request)) as session:
        batch, _owned = owned_batch(session=session, actor=actor, bid=bid, action=Action.TRANSFER)
        assert batch.id is not None
        held = transfer.held_in_own_apis(session=session, batch_id=batch.id, account_id=actor.account_id)
        offer = transfer.open_offer_of(session=session, actor=actor, bid=bid)
    return render(request, "transfer.html", who, status=status, bid=bid, path=batch_path(bid),
                  devices=batch.device_count, held=held, offer=offer, values=values, errors=errors,
                  problem=problem, choices=EXPIRY_CHOICES)


@router.get("/batches/{bid}/transfer", response_class=HTMLResponse)
def offer_page(request: Request, bid: str) -> Response:
    """Offer the batch to another account: refused up front while its devices sit in the account's clouds."""
    return _offer_page(request, signed_in(request), bid, values={"expires": transfer.DEFAULT_EXPIRY}, errors={})


@router.post("/batches/{bid}/transfer", response_class=HTMLResponse)
def offer(request: Request, bid: str, to: Annotated[str, Form(max_length=LONG)] = "",
          expires: Annotated[str, Form(max_length=LONG)] = "", note: Annotated[str, Form(max_length=LONG)] = "",
          csrf_token: Annotated[str, Form()] = "") -> Response:
    """Make the offer and show its code, this once: the response is the only place the code ever is."""
    who = signed_in(request)
    check_csrf(who[1], csrf_token)
    actor = who[0]
    values = {"to": to[:200], "expires": expires[:20], "note": note[:600]}
    if not to.strip():
        return _offer_page(request, who, bid, values=values, status=422,
                           errors={"to": "Receiving account: give the name of the account that gets the batch"})
    try:
        with session_scope(deps.settings_of(request)) as session:
            made = transfer.offer(session=session, actor=actor, bid=bid, to_account=to,
                                  expires=transfer.parse_expires(expires or None), note=note or None)
    except FieldError as exc:
        name, said = _in_page_words(exc, OFFER_LABELS)
        return _offer_page(request, who, bid, values=values, errors={name: said}, status=422)
    except NotFound:
        raise
    except BinderyError as exc:
        return _offer_page(request, who, bid, values=values, errors={}, problem=page_words(exc), status=409)
    response = render(request, "transfer_made.html", who, bid=bid, path=batch_path(bid), made=made)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/batches/{bid}/transfer/withdraw")
def withdraw(request: Request, bid: str, csrf_token: Annotated[str, Form()] = "") -> Response:
    actor = logged_in(request, csrf_token)
    try:
        with session_scope(deps.settings_of(request)) as session:
            transfer.withdraw(session=session, actor=actor, bid=bid)
    except NotFound as exc:
        raise batches.handed_on(request, actor, bid) or exc from None
    except BinderyError as exc:
        return back(batch_path(bid), error=page_words(exc))
    return back(batch_path(bid), ok=f"the offer of {bid} is withdrawn: its code no longer works")


# ---- accept -----------------------------------------------------------------------------------------------

@router.get("/transfers/accept", response_class=HTMLResponse)
def accept_page(request: Request) -> Response:
    """The accept form on its own, for a phone (the batch list, which also has it, is a desktop page)."""
    who = signed_in(request)
    return _accept_page(request, who, "accept.html", code="", said=None, status=200)


def _accept_page(request: Request, who: tuple[Actor, str], template: str, *, code: str, said: str | None,
                 status: int) -> Response:
    context = batches.list_context(request, who[0], "")
    return render(request, template, who, status=status, accept_error=said, accept_code=code[:200],
                  phone=template == "accept.html", **context)


@router.post("/transfers/accept")
def accept(request: Request, code: Annotated[str, Form(max_length=LONG)] = "",
           back_to: Annotated[str, Form(max_length=16)] = "", csrf_token: Annotated[str, Form()] = "") -> Response:
    """Accept with the pasted code; the batch page of the batch now owned is next (a refusal stays on the list,
    the code never kept)."""
    who = signed_in(request)
    check_csrf(who[1], csrf_token)
    actor = who[0]
    page = "accept.html" if back_to == "accept" else "batches.html"
    if not code.strip():
        return _accept_page(request, who, page, code=code, status=422,
                            said="Transfer code: paste the code the giving account sent you")
    try:
        done = services.accept_transfer(deps.settings_of(request), deps.jobs_of(request), actor, code)
    except BinderyError as exc:
        # the page it came from again: the error beside the field, the code as typed (shown back, never kept)
        return _accept_page(request, who, page, code=code, said=f"Transfer code: {page_words(exc)}",
                            status=api_status(exc))
    message = f"batch {done['bid']} ({done['devices']:,} devices) from {done['from_account']} is yours now"
    if done["job"]:
        message += f"; provisioning into {done['job']['cloud_api']} started"
    return back(batch_path(done["bid"]), ok=message)


# ---- split ------------------------------------------------------------------------------------------------

def _split_page(request: Request, who: tuple[Actor, str], bid: str, *, values: dict[str, str],
                errors: dict[str, str], problem: str | None = None, status: int = 200) -> Response:
    actor = who[0]
    require(actor, Action.SPLIT)
    with session_scope(deps.settings_of(request)) as session:
        batch, _owned = owned_batch(session=session, actor=actor, bid=bid, action=Action.SPLIT)
        assert batch.id is not None
        view = binding.batch_view(session=session, actor=actor, bid=bid)
        offer = transfer.open_offer_of(session=session, actor=actor, bid=bid)
        held = split.provisioned_devices(session=session, batch_id=batch.id)  # a device in two APIs is one
        held_in = transfer.held_in_own_apis(session=session, batch_id=batch.id, account_id=actor.account_id)
    return render(request, "split.html", who, status=status, bid=bid, path=batch_path(bid), batch=view,
                  held=held, held_in=held_in, offer=offer, values=values, errors=errors, problem=problem)


@router.get("/batches/{bid}/split", response_class=HTMLResponse)
def split_page(request: Request, bid: str) -> Response:
    return _split_page(request, signed_in(request), bid, values={}, errors={})


def _device_ids(text: str) -> list[str] | None:
    ids = [line.strip() for line in text.splitlines() if line.strip()]
    return ids or None


@router.post("/batches/{bid}/split", response_class=HTMLResponse)
def split_batch(request: Request, bid: str, new_bid: Annotated[str, Form(max_length=LONG)] = "",
                count: Annotated[str, Form(max_length=LONG)] = "",
                devices: Annotated[str, Form(max_length=DEVICES_LIMIT)] = "",
                csrf_token: Annotated[str, Form()] = "") -> Response:
    """Cut the batch: the new batch's page is next, saying how many moved."""
    who = signed_in(request)
    check_csrf(who[1], csrf_token)
    actor = who[0]
    values = {"new_bid": new_bid[:200], "count": count[:20], "devices": devices[:20_000]}
    errors: dict[str, str] = {}
    if not new_bid.strip():
        errors["new_bid"] = "New BID: give the BID of the new batch"
    number: int | None = None
    if count.strip() and devices.strip():
        errors["count"] = "Number of devices to move: give a number or a list of device IDs, not both"
    elif count.strip():
        try:
            number = int(count.strip().replace(",", "")) if len(count.strip()) <= 12 else None
            if number is None:
                raise ValueError(count)
        except ValueError:
            errors["count"] = f"Number of devices to move: {count.strip()[:20]!r} is not a whole number"
    elif not devices.strip():
        errors["count"] = "Number of devices to move: give a number, or list the device IDs below"
    if errors:
        return _split_page(request, who, bid, values=values, errors=errors, status=422)
    try:
        with session_scope(deps.settings_of(request)) as session:
            done = split.split(session=session, actor=actor, bid=bid, new_bid=new_bid.strip(), count=number,
                               device_ids=None if number is not None else _device_ids(devices))
    except FieldError as exc:
        name, said = _in_page_words(exc, SPLIT_LABELS)
        return _split_page(request, who, bid, values=values, errors={name: said}, status=422)
    except NotFound:
        raise
    except BinderyError as exc:
        return _split_page(request, who, bid, values=values, errors={}, problem=page_words(exc), status=409)
    return back(batch_path(done.new_bid), ok=f"split {done.bid}: {done.moved:,} devices moved to {done.new_bid}, "
                                             f"{done.left:,} left in {done.bid}")
