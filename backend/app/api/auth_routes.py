"""/auth/…: sign-up of the first admin, sign-in and out, the signed-in user, personal API keys,
usage (one's own; admins: everyone's), and (admins) the users and their limits. Mounted with
AUTH=password or AUTH=header; the guard (app/accounts/guard.py) has already said who is asking."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from ..accounts.guard import SESSION_COOKIE, Gate
from ..accounts.network import Peer
from ..accounts.service import KeyView, LimitName, Principal, UserView
from ..accounts.usage import UsageReport, date_range, report
from ..core.errors import OpenAIError
from .deps import call

router = APIRouter(prefix="/auth", tags=["accounts"])


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Credentials(Strict):
    username: str = Field(max_length=254)
    password: str = Field(max_length=1024)


class SignUp(Credentials):
    email: str | None = Field(default=None, max_length=254)


class NewUser(SignUp):
    role: Literal["admin", "user"] = "user"


class UserChange(Strict):
    disabled: bool | None = None
    role: Literal["admin", "user"] | None = None
    password: str | None = Field(default=None, max_length=1024)
    rpm_limit: int | None = Field(
        default=None, ge=0, le=2**31 - 1, description="Requests per minute; 0: none; null: USER_RPM."
    )
    tokens_per_day_limit: int | None = Field(
        default=None, ge=0, le=2**62, description="Tokens per UTC day; 0: none; null: USER_TOKENS_PER_DAY."
    )


class PasswordChange(Strict):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class NewKey(Strict):
    name: str = Field(max_length=100)


class UserOut(BaseModel):
    id: int
    username: str
    email: str | None
    role: str
    disabled: bool
    created_at: datetime
    rpm_limit: int | None = Field(description="This account's own limit; null: USER_RPM.")
    tokens_per_day_limit: int | None = Field(
        description="This account's own limit; null: USER_TOKENS_PER_DAY."
    )


class KeyOut(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None


class CreatedKey(KeyOut):
    key: str = Field(description="The key itself: shown this once, stored only hashed.")


class UsageCounts(BaseModel):
    requests: int
    prompt_tokens: int = Field(description="Prompt tokens; of embeddings, the input tokens.")
    completion_tokens: int
    total_tokens: int


class UsageTotal(UsageCounts):
    day: date | None = Field(default=None, description="In `daily`: the UTC day.")
    user_id: int | None = Field(
        default=None, description="In `users` and `keys`; null: the operator's API_KEY."
    )
    username: str | None = None
    api_key_id: int | None = Field(
        default=None, description="In `keys`; null: the page (a session or the SSO proxy)."
    )
    key_name: str | None = None
    key_prefix: str | None = None


class UsageRowOut(UsageCounts):
    day: date
    user_id: int | None
    username: str | None
    api_key_id: int | None
    key_name: str | None
    key_prefix: str | None
    model: str


class UsageOut(BaseModel):
    """Usage from `start` to `end` (UTC days, both included): for a chart (`daily`, every day
    of the range) and a table (`rows`), summed per user, per key and in all."""

    start: date
    end: date
    total: UsageCounts
    daily: list[UsageTotal]
    users: list[UsageTotal]
    keys: list[UsageTotal]
    rows: list[UsageRowOut]


class Status(BaseModel):
    auth: str
    user: UserOut | None
    signup_open: bool


def gate(request: Request) -> Gate:
    found: Gate = request.app.state.gate
    return found


def principal(request: Request) -> Principal | None:
    found: Principal | None = request.state.principal
    return found


def signed_in(request: Request) -> Principal:
    who = principal(request)
    if who is None:
        raise OpenAIError(401, "Not signed in: POST /auth/login first.", code="not_signed_in")
    return who


def user_id(request: Request) -> int:
    who = signed_in(request)
    if who.user_id is None:
        raise OpenAIError(
            403, "The operator's API_KEY belongs to no account; sign in as a user.", type="permission_error"
        )
    return who.user_id


def admin(request: Request) -> None:
    if not signed_in(request).admin:
        raise OpenAIError(403, "Only an admin may manage users.", type="permission_error", code="not_admin")


def passwords(request: Request) -> None:
    if gate(request).mode != "password":
        raise OpenAIError(
            400, "AUTH=header: people sign in at the proxy in front, not here.", code="passwords_disabled"
        )


def user_out(view: UserView) -> UserOut:
    return UserOut.model_validate(view, from_attributes=True)


def key_out(view: KeyView) -> KeyOut:
    return KeyOut.model_validate(view, from_attributes=True)


def usage_out(found: UsageReport) -> UsageOut:
    return UsageOut.model_validate(found, from_attributes=True)


async def usage(request: Request, start: date | None, end: date | None, user: int | None) -> UsageOut:
    g = gate(request)
    first, last = await call(date_range, start, end)
    rows = await call(g.usage.rows, first, last, user)
    return usage_out(report(rows, first, last))


START = Query(default=None, description="First UTC day (YYYY-MM-DD); default: 29 days before `end`.")
END = Query(default=None, description="Last UTC day (YYYY-MM-DD); default: today.")


async def sign_in(request: Request, response: Response, view: UserView) -> UserOut:
    """A fresh session for `view` (ending the browser's previous one) in the cookie."""
    g = gate(request)
    token = await call(g.accounts.start_session, view.id, request.cookies.get(SESSION_COOKIE))
    client: Peer = request.state.peer
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(g.accounts.session_ttl.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=client.https,
        path="/",
    )
    return user_out(view)


@router.get("/status")
async def status(request: Request) -> Status:
    """The mode, who is signed in, and whether the first account may still sign up."""
    g = gate(request)
    who = principal(request)
    user = await call(g.accounts.get_user, who.user_id) if who and who.user_id is not None else None
    empty = g.mode == "password" and await call(g.accounts.count_users) == 0
    return Status(auth=g.mode, user=user_out(user) if user else None, signup_open=empty)


@router.post("/signup", status_code=201)
async def signup(body: SignUp, request: Request, response: Response) -> UserOut:
    """The first account, which becomes admin; later ones are made by an admin."""
    passwords(request)
    g = gate(request)
    view = await call(
        g.accounts.create_user, body.username, body.password, "admin", body.email, only_if_first=True
    )
    return await sign_in(request, response, view)


@router.post("/login")
async def login(body: Credentials, request: Request, response: Response) -> UserOut:
    passwords(request)
    g = gate(request)
    account, address = body.username.strip().lower(), request.state.peer.address
    wait = max(
        await call(g.account_failures.retry_after, account),
        await call(g.address_failures.retry_after, address),
    )
    if wait:
        raise OpenAIError(
            429,
            f"Too many failed sign-ins; try again in {wait} s.",
            type="rate_limit_error",
            code="too_many_attempts",
            headers={"Retry-After": str(wait)},
        )
    view = await call(g.accounts.authenticate, body.username, body.password)
    if view is None:
        await call(g.account_failures.failed, account)
        await call(g.address_failures.failed, address)
        raise OpenAIError(401, "Wrong username or password.", code="invalid_credentials")
    await call(g.account_failures.clear, account)
    return await sign_in(request, response, view)


@router.post("/logout", status_code=204)
async def logout(request: Request, response: Response) -> None:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await call(gate(request).accounts.end_session, token)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")


@router.get("/me")
async def me(request: Request) -> UserOut:
    return user_out(await call(gate(request).accounts.get_user, user_id(request)))


@router.post("/password", status_code=204)
async def change_password(body: PasswordChange, request: Request, response: Response) -> None:
    """Changes your own password; every session of yours ends, this one gets a new one."""
    passwords(request)
    g, uid = gate(request), user_id(request)
    await call(g.accounts.change_password, uid, body.current_password, body.new_password)
    await sign_in(request, response, await call(g.accounts.get_user, uid))


@router.get("/me/usage")
async def my_usage(request: Request, start: date | None = START, end: date | None = END) -> UsageOut:
    """Your own usage per day, key and model (at most 366 days)."""
    return await usage(request, start, end, user_id(request))


@router.get("/usage")
async def all_usage(
    request: Request,
    start: date | None = START,
    end: date | None = END,
    user: int | None = Query(
        default=None, alias="user_id", ge=1, le=2**31 - 1, description="Only this user's usage."
    ),
) -> UsageOut:
    """(Admins) everyone's usage per day, user, key and model (at most 366 days)."""
    if not signed_in(request).admin:
        raise OpenAIError(
            403,
            "Only an admin may read others' usage; GET /auth/me/usage is yours.",
            type="permission_error",
            code="not_admin",
        )
    if user is not None:
        await call(gate(request).accounts.get_user, user)  # a 404 for no such user
    return await usage(request, start, end, user)


@router.get("/keys")
async def list_keys(request: Request) -> list[KeyOut]:
    return [key_out(k) for k in await call(gate(request).accounts.list_keys, user_id(request))]


@router.post("/keys", status_code=201)
async def create_key(body: NewKey, request: Request) -> CreatedKey:
    token, view = await call(gate(request).accounts.create_key, user_id(request), body.name)
    return CreatedKey(key=token, **key_out(view).model_dump())


@router.delete("/keys/{key_id}", status_code=204)
async def revoke_key(key_id: int, request: Request) -> None:
    g = gate(request)
    await call(g.accounts.revoke_key, user_id(request), key_id)
    g.forget_keys()


@router.get("/users")
async def list_users(request: Request) -> list[UserOut]:
    admin(request)
    return [user_out(u) for u in await call(gate(request).accounts.list_users)]


@router.post("/users", status_code=201)
async def create_user(body: NewUser, request: Request) -> UserOut:
    admin(request)
    g = gate(request)
    return user_out(await call(g.accounts.create_user, body.username, body.password, body.role, body.email))


@router.patch("/users/{target}")
async def update_user(target: int, body: UserChange, request: Request) -> UserOut:
    """Disable (ending their sessions and keys), enable, change the role, reset the password,
    set the account's limits (null: back to the defaults)."""
    admin(request)
    g = gate(request)
    names: tuple[LimitName, ...] = ("rpm_limit", "tokens_per_day_limit")
    limits = {name: getattr(body, name) for name in names if name in body.model_fields_set}
    view = await call(
        g.accounts.update_user,
        target,
        disabled=body.disabled,
        role=body.role,
        password=body.password,
        limits=limits,
    )
    g.forget_keys()
    return user_out(view)


@router.delete("/users/{target}", status_code=204)
async def delete_user(target: int, request: Request) -> None:
    """Deletes the account and everything it owns."""
    admin(request)
    g = gate(request)
    await call(g.accounts.delete_user, target)
    g.forget_keys()
