"""/api/…: what a person keeps on the server (app/conversations): conversations with their sync
(versions, a change cursor, tombstones), import and export, presets, files and documents.
Owner-only: another user's conversation, preset, file or document is 404, whoever asks. With
AUTH=password or header the guard has said who is asking (cookie writes already passed its CSRF
check); with AUTH=none everything belongs to one built-in local user."""

from __future__ import annotations

import threading
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from ..accounts.guard import cross_site, presented_token
from ..conversations.service import ID_LENGTH, Page, Storage
from ..core.config import Settings
from ..core.errors import OpenAIError
from ..db.engine import database_url, make_engine
from ..db.migrate import upgrade
from ..protocol import ErrorResponse
from .body import documented_body, json_body
from .deps import call

# What any /api route may answer besides its success (errors in OpenAI's shape).
STORAGE_ERRORS = {
    201: "Created (a PUT of a new id); 200 when it replaced one.",
    400: "Invalid request; `param` names the field and the message says what to change.",
    401: "Not signed in, or a wrong key.",
    403: "The operator's API_KEY (it belongs to no account), or a write from another site.",
    404: "No such conversation, preset, file or document of this user.",
    409: "Changed meanwhile: the body carries the server's copy to merge.",
    413: "Over MAX_REQUEST_BYTES, or over the user's USER_STORAGE_MB.",
    429: "The user is over a limit; retry after the Retry-After header's seconds.",
    500: "A bug; the message carries no details.",
}
router = APIRouter(
    prefix="/api",
    tags=["storage"],
    # 409's body is an error plus `current` (the server's copy), not the bare error shape.
    responses={
        code: {"description": text} if code in (201, 409) else {"model": ErrorResponse, "description": text}
        for code, text in STORAGE_ERRORS.items()
    },
)
# The page's times are JavaScript milliseconds; a bound keeps them inside a 64-bit column.
MAX_MS = 2**53


def no_nul(text: str) -> str:
    # PostgreSQL's text columns refuse NUL, so it is refused here, for every database alike.
    if "\x00" in text:
        raise ValueError("must not contain a NUL character (\\u0000)")
    return text


Text = Annotated[str, AfterValidator(no_nul)]
Id = Annotated[Text, Field(min_length=1, max_length=ID_LENGTH)]
PathId = Annotated[str, Path(min_length=1, max_length=ID_LENGTH)]
Millis = Annotated[int, Field(ge=0, le=MAX_MS)]


class MessageIn(BaseModel):
    """A message as the page keeps it (frontend/src/types.ts `Message`, its camelCase names);
    other fields are kept as sent."""

    model_config = ConfigDict(extra="allow")
    id: Id
    role: Literal["user", "assistant", "system", "tool"]
    content: Text
    createdAt: Millis
    parentId: Id | None = None
    reasoning: Text | None = None
    status: Literal["streaming", "done", "stopped", "error", "interrupted"] | None = None
    toolCalls: list[dict[str, Any]] | None = None
    attachments: list[dict[str, Any]] | None = None


class ConversationFields(BaseModel):
    """A conversation's fields but its id and messages; others are kept as sent."""

    model_config = ConfigDict(extra="allow")
    title: Annotated[Text, Field(max_length=10_000)] | None = None
    createdAt: Millis | None = None
    updatedAt: Millis | None = None
    folder: Annotated[Text, Field(max_length=200)] | None = None
    pinned: bool | None = None
    archived: bool | None = None


class FieldsIn(ConversationFields):
    """The fields a change sets; null removes an optional one."""

    @model_validator(mode="after")
    def _not_id_or_messages(self) -> FieldsIn:
        for key in ("id", "messages"):
            if self.model_extra and key in self.model_extra:
                raise ValueError(f"'{key}' is not a field to change here")
        return self


class ConversationIn(ConversationFields):
    """A conversation as the page keeps it (`Conversation`), every branch's messages included."""

    id: Id
    title: Annotated[Text, Field(max_length=10_000)]
    createdAt: Millis
    updatedAt: Millis
    messages: list[MessageIn] = Field(max_length=100_000)


def page(model: BaseModel) -> Page:
    """What the client sent, fields it left out still left out (an absent one is not a null)."""
    return model.model_dump(exclude_unset=True)


class ConversationPut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base_version: int | None = Field(
        default=None, ge=1, description="The version this copy was based on; absent: create."
    )
    conversation: ConversationIn


class ConversationChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base_version: int = Field(ge=1, description="The server version this device last read.")
    fields: FieldsIn = Field(default_factory=FieldsIn)
    messages: list[MessageIn] = Field(default_factory=list, max_length=100_000)
    removed: list[Id] = Field(default_factory=list, max_length=100_000)


class ConversationImport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    conversations: list[ConversationIn] = Field(max_length=10_000)


class Fork(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Id = Field(description="The new conversation's id.")
    message_id: Id = Field(description="The last message of the branch to copy.")
    title: Annotated[Text, Field(max_length=10_000)] | None = None


class PresetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[Text, Field(min_length=1, max_length=200)]
    data: dict[str, Any] = Field(default_factory=dict)


# Kept as float32: a number past its range (or NaN) would come back as something else.
Float32 = Annotated[float, Field(allow_inf_nan=False, ge=-3.4e38, le=3.4e38)]


class ChunkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Text
    embedding: list[Float32] | None = Field(default=None, max_length=65_536)


class DocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[Text, Field(min_length=1, max_length=255)]
    text: Text
    model: Annotated[Text, Field(max_length=255)] | None = None
    chunks: list[ChunkIn] = Field(default_factory=list, max_length=100_000)


# The bodies json_body parses, for the OpenAPI description (openapi.py).


class LocalOwner:
    """AUTH=none: the database opened, migrated and its local user made on first use, so a
    server nobody keeps anything on never creates one."""

    def __init__(self, url: str, quota_bytes: int) -> None:
        self.url = url
        self.quota_bytes = quota_bytes
        self.lock = threading.Lock()
        self.found: tuple[Storage, int] | None = None

    def get(self) -> tuple[Storage, int]:
        with self.lock:
            if self.found is None:
                engine = make_engine(self.url)
                upgrade(engine)
                storage = Storage(engine, self.quota_bytes)
                self.found = (storage, storage.local_user())
            return self.found


def install(app: FastAPI, settings: Settings) -> None:
    """Mounts the routes; with accounts, on the accounts' database (migrated at start-up)."""
    quota = settings.user_storage_mb * 1024 * 1024
    gate = getattr(app.state, "gate", None)
    if gate is not None:
        app.state.storage = Storage(gate.accounts.engine, quota)
    else:
        app.state.local_owner = LocalOwner(database_url(settings.data_dir, settings.database_url), quota)
        app.state.allowed_origins = settings.cors_origins
    app.include_router(router)


async def owner(request: Request) -> tuple[Storage, int]:
    """The storage and the id of the user whose things these are."""
    app = request.app
    local: LocalOwner | None = getattr(app.state, "local_owner", None)
    if local is not None:
        # No guard checks cross-site requests with AUTH=none; the things kept here need it (as
        # the accounts' guard does it: a request with a key is an SDK's, not a browser's).
        headers = dict(request.scope["headers"])
        if (
            cross_site(request.method, headers, app.state.allowed_origins)
            and presented_token(headers) is None
        ):
            raise OpenAIError(
                403,
                "Cross-site request refused: this server only takes changes from its own page.",
                type="permission_error",
                code="csrf_refused",
            )
        return await call(local.get)
    who = request.state.principal
    assert who is not None, "the guard answers 401 to anonymous /api requests"
    if who.user_id is None:
        raise OpenAIError(
            403,
            "The operator's API_KEY belongs to no account, so it keeps no conversations; "
            "use a personal API key (POST /auth/keys) or sign in.",
            type="permission_error",
            code="no_account",
        )
    storage: Storage = app.state.storage
    return storage, who.user_id


Owner = Annotated[tuple[Storage, int], Depends(owner)]


def versioned(envelope: Page, status: int = 200) -> JSONResponse:
    """A conversation's envelope, its version also as the ETag (for If-Match)."""
    return JSONResponse(envelope, status_code=status, headers={"ETag": f'"{envelope["version"]}"'})


def if_match(header: str | None, body: int | None) -> int | None:
    """The base version from the body, else from If-Match (`"3"`, `W/"3"` or `3`)."""
    if body is not None or header is None:
        return body
    text = header.strip().removeprefix("W/").strip('"')
    if not text.isdigit() or len(text) > 12:
        raise OpenAIError(
            400,
            'If-Match must be a conversation\'s version, as its ETag gave it (e.g. "3").',
            param="If-Match",
        )
    return int(text)


# Conversations


@router.get("/conversations")
async def conversations(
    who: Owner,
    since: Annotated[int, Query(ge=0, le=2**62, description="The cursor of the last sync; 0: all.")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Conversations changed since the cursor, oldest first, deleted ones as tombstones."""
    storage, user = who
    return await call(storage.changes, user, since, limit)


@router.post("/conversations/import", openapi_extra=documented_body(ConversationImport))
async def import_conversations(
    who: Owner, body: Annotated[ConversationImport, Depends(json_body(ConversationImport))]
) -> dict[str, list[str]]:
    """A device's local history, ids kept; conversations already here are skipped (idempotent)."""
    storage, user = who
    return await call(storage.import_many, user, [page(c) for c in body.conversations])


@router.get("/conversations/export")
async def export_conversations(who: Owner) -> dict[str, list[Page]]:
    storage, user = who
    return {"conversations": await call(storage.export, user)}


@router.get("/conversations/{conversation_id}")
async def get_conversation(conversation_id: PathId, who: Owner) -> JSONResponse:
    storage, user = who
    return versioned(await call(storage.get, user, conversation_id))


@router.get("/conversations/{conversation_id}/export")
async def export_conversation(conversation_id: PathId, who: Owner) -> Page:
    """The conversation alone, in the page's shape (what its import takes back)."""
    storage, user = who
    envelope = await call(storage.get, user, conversation_id)
    found: Page = envelope["conversation"]
    return found


@router.put("/conversations/{conversation_id}", openapi_extra=documented_body(ConversationPut))
async def put_conversation(
    conversation_id: PathId,
    who: Owner,
    body: Annotated[ConversationPut, Depends(json_body(ConversationPut))],
    if_match_header: Annotated[str | None, Header(alias="If-Match")] = None,
) -> JSONResponse:
    """Creates the conversation, or replaces it if `base_version` (or If-Match) is its version;
    409 with the server's copy in `current` otherwise."""
    if body.conversation.id != conversation_id:
        raise OpenAIError(
            400, "The conversation's id differs from the one in the URL.", param="conversation.id"
        )
    storage, user = who
    base = if_match(if_match_header, body.base_version)
    envelope = await call(storage.put, user, page(body.conversation), base)
    return versioned(envelope, 201 if envelope["version"] == 1 else 200)


@router.patch("/conversations/{conversation_id}", openapi_extra=documented_body(ConversationChange))
async def change_conversation(
    conversation_id: PathId,
    who: Owner,
    body: Annotated[ConversationChange, Depends(json_body(ConversationChange))],
) -> JSONResponse:
    """A device's change merged in: its fields and messages win, other devices' messages stay,
    and a message both changed is kept twice (a branch)."""
    storage, user = who
    envelope = await call(
        storage.apply_change,
        user,
        conversation_id,
        body.base_version,
        page(body.fields),
        [page(m) for m in body.messages],
        body.removed,
    )
    return versioned(envelope)


@router.delete("/conversations/{conversation_id}")
async def delete_conversation(
    conversation_id: PathId,
    who: Owner,
    base_version: Annotated[int | None, Query(ge=1, le=2**31)] = None,
    if_match_header: Annotated[str | None, Header(alias="If-Match")] = None,
) -> JSONResponse:
    """Deletes it (409 if `base_version`/If-Match is given and stale); other devices see the tombstone."""
    storage, user = who
    envelope = await call(storage.delete, user, conversation_id, if_match(if_match_header, base_version))
    return versioned(envelope)


@router.post("/conversations/{conversation_id}/fork", openapi_extra=documented_body(Fork))
async def fork_conversation(
    conversation_id: PathId, who: Owner, body: Annotated[Fork, Depends(json_body(Fork))]
) -> JSONResponse:
    """A new conversation with the branch that ends at `message_id`."""
    storage, user = who
    envelope = await call(storage.fork, user, conversation_id, body.message_id, body.id, body.title)
    return versioned(envelope, 201)


@router.get("/storage")
async def storage_usage(who: Owner) -> dict[str, int]:
    """Bytes kept, the quota (USER_STORAGE_MB), and the current sync cursor."""
    storage, user = who
    return await call(storage.usage, user)


# Presets


@router.get("/presets")
async def presets(who: Owner) -> list[Page]:
    storage, user = who
    return await call(storage.presets, user)


@router.put("/presets/{preset_id}", openapi_extra=documented_body(PresetIn))
async def put_preset(
    preset_id: PathId, who: Owner, body: Annotated[PresetIn, Depends(json_body(PresetIn))]
) -> Page:
    storage, user = who
    return await call(storage.put_preset, user, preset_id, body.name, body.data)


@router.delete("/presets/{preset_id}", status_code=204)
async def delete_preset(preset_id: PathId, who: Owner) -> None:
    storage, user = who
    await call(storage.delete_preset, user, preset_id)


# Files


@router.get("/files")
async def files(who: Owner) -> list[Page]:
    storage, user = who
    return await call(storage.files, user)


@router.put("/files/{file_id}")
async def put_file(
    file_id: PathId,
    who: Owner,
    request: Request,
    name: Annotated[str, Query(min_length=1, max_length=255)],
) -> Page:
    """The request body is the file (its Content-Type kept), up to MAX_REQUEST_BYTES."""
    storage, user = who
    if "\x00" in name:
        raise OpenAIError(400, "A file name must not contain a NUL character.", param="name")
    media_type = request.headers.get("content-type", "application/octet-stream")[:255]
    return await call(storage.put_file, user, file_id, name, media_type, await request.body())


@router.get(
    "/files/{file_id}",
    responses={200: {"description": "The file's bytes, as stored.", "content": {"*/*": {}}}},
)
async def get_file(file_id: PathId, who: Owner) -> Response:
    storage, user = who
    view, data = await call(storage.file, user, file_id)
    # Whatever its type, a user's file never runs as a page of this site: downloaded, not shown.
    headers = {
        "Content-Disposition": "attachment",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
    }
    return Response(data, media_type=view["media_type"], headers=headers)


@router.delete("/files/{file_id}", status_code=204)
async def delete_file(file_id: PathId, who: Owner) -> None:
    storage, user = who
    await call(storage.delete_file, user, file_id)


# Documents


@router.get("/documents")
async def documents(who: Owner) -> list[Page]:
    storage, user = who
    return await call(storage.documents, user)


@router.put("/documents/{document_id}", openapi_extra=documented_body(DocumentIn))
async def put_document(
    document_id: PathId, who: Owner, body: Annotated[DocumentIn, Depends(json_body(DocumentIn))]
) -> Page:
    """A document's extracted text and its chunks with their embeddings (replacing any before)."""
    storage, user = who
    chunks = [c.model_dump() for c in body.chunks]
    return await call(storage.put_document, user, document_id, body.name, body.text, body.model, chunks)


@router.get("/documents/{document_id}")
async def get_document(document_id: PathId, who: Owner) -> Page:
    storage, user = who
    return await call(storage.document, user, document_id)


@router.delete("/documents/{document_id}", status_code=204)
async def delete_document(document_id: PathId, who: Owner) -> None:
    storage, user = who
    await call(storage.delete_document, user, document_id)
