"""The console's Product Cloud API pages: the list (settings as labelled fields, secrets as ********), one
"Add a Product Cloud API" flow (choose a kind, then that kind's fields only), the edit form and removal
with a confirmation step. Forms are generated from the kinds' specs; a refused form comes back with
every error next to its field in the field's words, and the values entered (never a secret)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from bindery.access import Action, require
from bindery.clouds import config
from bindery.clouds.kinds import spec_of, specs
from bindery.clouds.spec import COMMON_OPTIONS, KindSpec
from bindery.db import session_scope
from bindery.errors import BinderyError, FieldError, page_words
from bindery.models.clouds import CloudApi
from bindery.provisioning import service
from bindery.secrets import REDACTED, Secret
from bindery.web import cloudapis, deps, services
from bindery.web.pages import back, logged_in, render, signed_in

router = APIRouter(include_in_schema=False)
NAME_HELP = "How batches and runs name this API: 1 to 64 letters, digits, spaces and . _ -"
KEPT = 500  # longest value a refused form shows back (the models cap every field anyway)


def settings_rows(api: CloudApi) -> list[tuple[str, str]]:
    """The API's settings as (label, value) rows: its kind's options in the kind's words, the secret as
    ********, the common options, then who added it."""
    spec = spec_of(api.kind)
    stored = config.settings_of(api)
    rows = []
    for field in spec.fields:
        if field.secret:
            rows.append((field.label, REDACTED if api.secret_token else "(not set)"))
        elif stored.get(field.name):
            rows.append((field.label, stored[field.name]))
    return rows


def _page(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    who = signed_in(request)
    require(who[0], Action.CONFIGURE_CLOUD_API)
    return render(request, template, who, status=status, **context)


@router.get("/provisioning/cloud-apis/new", response_class=HTMLResponse)
def add_page(request: Request, kind: str = "") -> Response:
    """Step 1 chooses the kind (a GET form: no script needed); step 2 shows that kind's fields only."""
    if not kind:
        return _page(request, "cloud_api_kinds.html", kinds=specs())
    try:
        spec = spec_of(kind[:40])
    except FieldError as exc:
        return _page(request, "cloud_api_kinds.html", status=422, kinds=specs(), kind_error=exc.problem)
    return _form(request, spec, values={}, errors={})


def _form(request: Request, spec: KindSpec, *, values: dict[str, str], errors: dict[str, str],
          problem: str | None = None, editing: str | None = None, status: int = 200, check: bool = True) -> Response:
    advanced_open = any(name in errors or values.get(name) for name in COMMON_OPTIONS) if not editing else bool(
        set(errors) & set(COMMON_OPTIONS))
    return _page(request, "cloud_api_form.html", status=status, spec=spec, values=values, errors=errors,
                 problem=problem, editing=editing, advanced_open=advanced_open, check=check, name_help=NAME_HELP,
                 own=[f for f in spec.fields if not f.advanced], advanced=[f for f in spec.fields if f.advanced])


def _fields(form: Any) -> dict[str, str]:
    return {k: str(v) for k, v in form.items() if isinstance(v, str)}


def _kept(spec: KindSpec, fields: dict[str, str]) -> dict[str, str]:
    """What a refused form shows back: every value but the secret, cut to a sane length."""
    return {k: v[:KEPT] for k, v in fields.items() if k != spec.secret and k not in ("csrf_token", "check")}


def _labelled(spec: KindSpec, problems: list[FieldError]) -> dict[str, str]:
    labels = {"name": "Name", "kind": "Kind"}
    return {p.field: p.on_page(labels.get(p.field) or spec.label(p.field)) for p in problems}


def problems_of(spec: KindSpec, fields: dict[str, str], settings: Any, creating: bool,
                secret_kept: bool = False) -> list[FieldError]:
    """Every problem of a form, each once by field: the models' limits, the name, the common options one by
    one, then the kind's own validation (asked again with a stand-in for each refused value, so the
    errors after the first are found too). Nothing is contacted."""
    allowed = {f.name for f in spec.fields} | {"name"} if creating else {f.name for f in spec.fields}
    body = {k: v for k, v in fields.items() if k in allowed and v != ""}
    found: dict[str, FieldError] = {}
    try:
        cloudapis.adapter(creating).validate_python({**body, "kind": spec.kind})
    except ValidationError as exc:
        for problem in cloudapis.field_errors(exc):
            found.setdefault(problem.field, problem)
    if creating and "name" not in found:
        try:
            config.check_name(fields.get("name", ""))
        except FieldError as exc:
            found["name"] = exc if fields.get("name") else FieldError("name", "is required", joined=False)
    for name in COMMON_OPTIONS:
        if body.get(name) and name not in found:
            try:
                config.common_option(name, body[name])
            except FieldError as exc:
                found[name] = exc
    options: dict[str, str | None] = {k: v for k, v in body.items()
                                      if k in spec.own_options and k != spec.secret and k not in found}
    secret = Secret(body[spec.secret]) if spec.secret and body.get(spec.secret) else None
    if spec.secret and secret is None and secret_kept:
        secret = Secret(_stand_in(spec, spec.secret) or "")
    for _ in range(len(spec.fields) + 1):
        try:
            spec.validate({k: v for k, v in options.items() if v}, secret, settings, False)
            break
        except FieldError as exc:
            if exc.field in found:
                break
            found[exc.field] = exc
            stand_in = _stand_in(spec, exc.field)
            if stand_in is None:
                break
            if exc.field == spec.secret:
                secret = Secret(stand_in)
            else:
                options[exc.field] = stand_in
    return list(found.values())


STAND_INS = {"connection_string": "HostName=h.example;SharedAccessKeyName=p;SharedAccessKey=aw==",
             "credentials": "user:password"}


def _stand_in(spec: KindSpec, name: str) -> str | None:
    """A value the kind takes for ``name``, so that its validation can go on to the next field."""
    field = next((f for f in spec.fields if f.name == name), None)
    if field is None:
        return None
    if field.choices:
        return field.choices[0]
    return STAND_INS.get(name) or field.example or None


@router.post("/provisioning/cloud-apis", response_class=HTMLResponse)
async def add(request: Request) -> Response:
    fields = _fields(await request.form())
    actor = logged_in(request, fields.get("csrf_token", ""))
    require(actor, Action.CONFIGURE_CLOUD_API)
    try:
        spec = spec_of(fields.get("kind", "")[:40])
    except FieldError as exc:
        return _page(request, "cloud_api_kinds.html", status=422, kinds=specs(), kind_error=exc.problem)
    settings = deps.settings_of(request)
    check = fields.get("check", "") == "on"
    problems = problems_of(spec, fields, settings, creating=True)
    kept = _kept(spec, fields)
    if problems:
        return _form(request, spec, values=kept, errors=_labelled(spec, problems), status=422, check=check)
    try:
        body = cloudapis.parse({**{k: v for k, v in fields.items() if v != "" and k in
                                   {f.name for f in spec.fields} | {"name"}}, "kind": spec.kind, "check": check})
        kind, options, secret = cloudapis.options_of(body)
        with session_scope(settings) as session:
            services.add_cloud_api(session, settings, actor, fields["name"], kind, options, secret, check)
    except FieldError as exc:
        return _form(request, spec, values=kept, errors=_labelled(spec, [exc]), status=422, check=check)
    except BinderyError as exc:
        return _form(request, spec, values=kept, errors={}, problem=page_words(exc), status=409, check=check)
    return back("/provisioning", ok=f"added Product Cloud API {fields['name']} ({spec.kind})")


def _stored_values(api: CloudApi) -> dict[str, str]:
    spec = spec_of(api.kind)
    stored = config.settings_of(api)
    derived = spec.derived(stored)
    return {k: v for k, v in stored.items()
            if k in {f.name for f in spec.fields} and k not in derived and k != spec.secret}


@router.get("/provisioning/cloud-apis/{name}/edit", response_class=HTMLResponse)
def edit_page(request: Request, name: str) -> Response:
    who = signed_in(request)
    with session_scope(deps.settings_of(request)) as session:
        api = config.get_cloud_api(session=session, actor=who[0], name=name)
        values, spec = _stored_values(api), spec_of(api.kind)
    return _form(request, spec, values=values, errors={}, editing=name, check=False)


@router.post("/provisioning/cloud-apis/{name}/edit", response_class=HTMLResponse)
async def edit(request: Request, name: str) -> Response:
    fields = _fields(await request.form())
    actor = logged_in(request, fields.get("csrf_token", ""))
    settings = deps.settings_of(request)
    with session_scope(settings) as session:
        api = config.get_cloud_api(session=session, actor=actor, name=name)
        spec, stored = spec_of(api.kind), _stored_values(api)
    check = fields.get("check", "") == "on"
    kept = _kept(spec, fields)
    merged = {**stored, **{k: v for k, v in fields.items() if v != ""}}
    problems = problems_of(spec, merged, settings, creating=False, secret_kept=True)
    if problems:
        return _form(request, spec, values=kept, errors=_labelled(spec, problems), editing=name, status=422,
                     check=check)
    try:
        body = cloudapis.parse({**{k: v for k, v in fields.items() if v != "" and k in {f.name for f in spec.fields}},
                                "kind": spec.kind, "check": check}, creating=False)
        kind, options, secret = cloudapis.options_of(body)
        with session_scope(settings) as session:
            services.update_cloud_api(session, settings, actor, name, kind, options, secret, check)
    except FieldError as exc:
        return _form(request, spec, values=kept, errors=_labelled(spec, [exc]), editing=name, status=422,
                     check=check)
    except BinderyError as exc:
        return _form(request, spec, values=kept, errors={}, problem=page_words(exc), editing=name, status=409,
                     check=check)
    return back("/provisioning", ok=f"updated Product Cloud API {name}")


@router.get("/provisioning/cloud-apis/{name}/remove", response_class=HTMLResponse)
def remove_page(request: Request, name: str) -> Response:
    """Removal asks first, and says up front what still uses the API."""
    who = signed_in(request)
    with session_scope(deps.settings_of(request)) as session:
        api = config.get_cloud_api(session=session, actor=who[0], name=name)
        use = config.usage(session=session, api=api)
    return _page(request, "cloud_api_remove.html", api_name=name, kind=spec_of(api.kind), usage=use)


@router.post("/provisioning/cloud-apis/{name}/remove", response_class=HTMLResponse)
async def remove(request: Request, name: str) -> Response:
    fields = _fields(await request.form())
    actor = logged_in(request, fields.get("csrf_token", ""))
    settings = deps.settings_of(request)
    if fields.get("confirm") != "yes":
        return back(f"/provisioning/cloud-apis/{name}/remove")
    try:
        with session_scope(settings) as session:
            config.remove_cloud_api(session=session, actor=actor, name=name)
    except config.InUse as exc:
        with session_scope(settings) as session:
            api = config.get_cloud_api(session=session, actor=actor, name=name)
            use, kind = config.usage(session=session, api=api), spec_of(api.kind)
        return _page(request, "cloud_api_remove.html", status=409, api_name=name, kind=kind, usage=use,
                     refused=page_words(exc))
    return back("/provisioning", ok=f"removed Product Cloud API {name}")


@router.get("/provisioning", response_class=HTMLResponse)
def provisioning_page(request: Request) -> Response:
    who = signed_in(request)
    require(who[0], Action.CONFIGURE_CLOUD_API)
    with session_scope(deps.settings_of(request)) as session:
        apis = [{"name": a.name, "kind": a.kind, "title": spec_of(a.kind).title, "rows": settings_rows(a),
                 "created_by": a.created_by} for a in config.list_cloud_apis(session=session, actor=who[0])]
        auto = service.account_settings(session=session, actor=who[0])
    return render(request, "provisioning.html", who, apis=apis, auto=auto)
