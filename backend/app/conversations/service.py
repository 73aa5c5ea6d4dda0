"""The storage service. Conversations arrive and leave as plain dicts in the page's shape
(validated by the API layer); they are kept as rows (a conversation, its messages) and given
back equal, fields the server does not know of included.

Sync: every write of a user takes the next number of their change counter (`seq`, the cursor
of `changes(since)`) and raises the conversation's `version`. A whole-conversation write names
the version it was based on and is refused (Conflict, the server's copy attached) when another
device wrote in between; a change (`apply_change`) is merged instead, as the page's
store/merge.ts merges tabs: its fields and messages win, other devices' messages stay, and a
message both devices changed is kept twice (the second copy a sibling branch)."""

from __future__ import annotations

import array
import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from ..core.errors import Refusal
from ..db.models import (
    LOCAL_USERNAME,
    Document,
    DocumentChunk,
    Preset,
    StoredConversation,
    StoredFile,
    StoredMessage,
    User,
    UserStorage,
    now,
)

# Ids (conversations, messages, presets, files, documents) are at most this long: the columns' size.
ID_LENGTH = 128
# The page's fields kept in columns; the rest go to `settings` (conversations) or `extra`
# (messages) as they came.
CONVERSATION_COLUMNS = {"id", "title", "createdAt", "updatedAt", "folder", "pinned", "archived", "messages"}
MESSAGE_COLUMNS = {
    "id",
    "parentId",
    "role",
    "content",
    "reasoning",
    "toolCalls",
    "attachments",
    "status",
    "createdAt",
}

Page = dict[str, Any]


class StorageError(Refusal):
    """A request the storage cannot honour."""


class Conflict(StorageError):
    """The conversation changed since the version the client based its write on."""

    def __init__(self, current: Page) -> None:
        super().__init__(
            409,
            f"Conversation '{current['id']}' is at version {current['version']}, not the one this write "
            "was based on: another device changed it. Merge with the server's copy (in 'current') "
            "and send it again with that version.",
            "version_conflict",
            "base_version",
            extra={"current": current},
        )
        self.current = current


def size_of(value: Any) -> int:
    """Bytes a value counts against the quota: its compact JSON. What no database keeps (NaN,
    an infinity, a lone UTF-16 surrogate) is refused here, on every database alike."""
    try:
        return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode())
    except ValueError:  # UnicodeEncodeError included
        raise StorageError(
            400,
            "This holds a number JSON cannot represent (NaN or an infinity) or text with a lone "
            "UTF-16 surrogate; send it as valid JSON.",
            "invalid_value",
        ) from None


def with_parents(messages: list[Page]) -> list[Page]:
    """Every message with an explicit parent, as the page's withParents (store/branches.ts)
    gives it: a message without a parent earlier in the list (saved before branches) follows
    the one before it. So the tree is sound, without cycles."""
    seen: set[str] = set()
    out = []
    for i, m in enumerate(messages):
        if m["id"] in seen:
            raise StorageError(
                400, f"Message id '{m['id']}' appears twice.", "duplicate_message_id", "messages"
            )
        parent = m.get("parentId", "")
        if not (parent is None or parent in seen):
            m = {**m, "parentId": messages[i - 1]["id"] if i else None}
        seen.add(m["id"])
        out.append(m)
    return out


def message_page(row: StoredMessage) -> Page:
    page: Page = {
        "id": row.id,
        "role": row.role,
        "content": row.content,
        "createdAt": row.created_ms,
        "parentId": row.parent_id,
    }
    optional = {
        "reasoning": row.reasoning,
        "toolCalls": row.tool_calls,
        "attachments": row.attachments,
        "status": row.status,
    }
    page.update({k: v for k, v in optional.items() if v is not None})
    return {**page, **row.extra}


def set_message(row: StoredMessage, m: Page) -> None:
    row.parent_id = m["parentId"]
    row.role = m["role"]
    row.content = m["content"]
    row.created_ms = m["createdAt"]
    row.reasoning = m.get("reasoning")
    row.tool_calls = m.get("toolCalls")
    row.attachments = m.get("attachments")
    row.status = m.get("status")
    row.extra = {k: v for k, v in m.items() if k not in MESSAGE_COLUMNS}


def conversation_page(row: StoredConversation, messages: list[StoredMessage]) -> Page:
    page: Page = {
        "id": row.id,
        "title": row.title,
        "createdAt": row.created_ms,
        "updatedAt": row.updated_ms,
        **row.settings,
        "messages": [message_page(m) for m in messages],
    }
    optional = {"folder": row.folder, "pinned": row.pinned, "archived": row.archived}
    page.update({k: v for k, v in optional.items() if v is not None})
    return page


def set_fields(row: StoredConversation, fields: Page) -> None:
    """The conversation's fields (not its messages); a None value removes an optional one."""
    settings = dict(row.settings or {})
    for key, value in fields.items():
        if key == "title":
            row.title = value or ""
        elif key == "createdAt":
            row.created_ms = value or 0
        elif key == "updatedAt":
            row.updated_ms = value or 0
        elif key in ("folder", "pinned", "archived"):
            setattr(row, key, value)
        elif key not in ("id", "messages"):
            if value is None:
                settings.pop(key, None)
            else:
                settings[key] = value
    row.settings = settings


def envelope(row: StoredConversation, page: Page | None) -> Page:
    """What the API answers for a conversation: its version, and the page's copy (None: deleted)."""
    return {"id": row.id, "version": row.version, "deleted": row.deleted_at is not None, "conversation": page}


def pack(vector: list[float] | None) -> bytes | None:
    if vector is None:
        return None
    packed = array.array("f", vector)
    if sys.byteorder != "little":
        packed.byteswap()
    return packed.tobytes()


def unpack(data: bytes | None) -> list[float] | None:
    if data is None:
        return None
    vector = array.array("f")
    vector.frombytes(data)
    if sys.byteorder != "little":
        vector.byteswap()
    return vector.tolist()


@dataclass
class Storage:
    engine: Engine
    quota_bytes: int

    def __post_init__(self) -> None:
        self.db = sessionmaker(self.engine, expire_on_commit=False)

    # The user's counter and quota

    @contextmanager
    def writing(self, user_id: int) -> Iterator[tuple[Session, UserStorage]]:
        """A write transaction of `user_id`'s, their counter row locked first (on SQLite the
        first statement is a write, so the transaction holds the write lock from its start)."""
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        with self.db.begin() as db:
            db.execute(
                dialect.insert(UserStorage)
                .values(user_id=user_id, seq=0, bytes_used=0)
                .on_conflict_do_nothing(index_elements=["user_id"])
            )
            counter = db.scalars(
                select(UserStorage).where(UserStorage.user_id == user_id).with_for_update()
            ).one()
            yield db, counter

    def charge(self, counter: UserStorage, old: int, new: int) -> int:
        """Moves the user's bytes from `old` to `new` (413 past the quota, unless it shrinks),
        and gives the write its change number."""
        used = counter.bytes_used - old + new
        if new > old and used > self.quota_bytes:
            mib = 1024 * 1024
            raise StorageError(
                413,
                f"Storage quota exceeded: this would keep {used / mib:.1f} MiB of your "
                f"{self.quota_bytes / mib:.1f} MiB (USER_STORAGE_MB); delete conversations, files or "
                "documents to make room.",
                "storage_quota_exceeded",
            )
        counter.bytes_used = used
        counter.seq += 1
        return counter.seq

    def usage(self, user_id: int) -> Page:
        with self.db() as db:
            counter = db.get(UserStorage, user_id)
        return {
            "used_bytes": counter.bytes_used if counter else 0,
            "quota_bytes": self.quota_bytes,
            "cursor": counter.seq if counter else 0,
        }

    def local_user(self) -> int:
        """The id of AUTH=none's built-in user, made on first use."""
        with self.db() as db:
            found = db.scalar(select(User.id).where(User.username == LOCAL_USERNAME))
            if found is not None:
                return found
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        with self.db.begin() as db:
            db.execute(
                dialect.insert(User)
                .values(username=LOCAL_USERNAME, role="user", disabled=False, created_at=now())
                .on_conflict_do_nothing(index_elements=["username"])
            )
            return db.scalars(select(User.id).where(User.username == LOCAL_USERNAME)).one()

    # Conversations

    @staticmethod
    def _row(db: Session, user_id: int, conversation_id: str) -> StoredConversation | None:
        return db.scalar(
            select(StoredConversation).where(
                StoredConversation.user_id == user_id, StoredConversation.id == conversation_id
            )
        )

    @staticmethod
    def _messages(db: Session, pks: Iterable[int]) -> dict[int, list[StoredMessage]]:
        by_conversation: dict[int, list[StoredMessage]] = {pk: [] for pk in pks}
        if by_conversation:
            rows = db.scalars(
                select(StoredMessage)
                .where(StoredMessage.conversation_pk.in_(list(by_conversation)))
                .order_by(StoredMessage.conversation_pk, StoredMessage.position)
            )
            for m in rows:
                by_conversation[m.conversation_pk].append(m)
        return by_conversation

    def _envelopes(self, db: Session, rows: list[StoredConversation]) -> list[Page]:
        """The rows with their messages, each as of one version. Reads are not one snapshot
        (SQLite's driver begins no transaction for them, PostgreSQL reads what is committed), so
        a conversation written while its messages were read is read again."""
        while True:
            messages = self._messages(db, [r.pk for r in rows if r.deleted_at is None])
            versions = dict(
                db.execute(
                    select(StoredConversation.pk, StoredConversation.version).where(
                        StoredConversation.pk.in_([r.pk for r in rows])
                    )
                ).all()
            )
            rows = [r for r in rows if r.pk in versions]  # gone with its account meanwhile
            changed = [r for r in rows if versions[r.pk] != r.version]
            if not changed:
                return [
                    envelope(r, None if r.deleted_at else conversation_page(r, messages[r.pk])) for r in rows
                ]
            for r in changed:
                db.refresh(r)

    def _live(self, db: Session, user_id: int, conversation_id: str) -> StoredConversation:
        row = self._row(db, user_id, conversation_id)
        if row is None or row.deleted_at is not None:
            raise StorageError(
                404, f"No conversation '{conversation_id}' (or it was deleted).", "conversation_not_found"
            )
        return row

    def get(self, user_id: int, conversation_id: str) -> Page:
        with self.db() as db:
            return self._envelopes(db, [self._live(db, user_id, conversation_id)])[0]

    def changes(self, user_id: int, since: int, limit: int) -> Page:
        """Conversations written after cursor `since` (0: every one), tombstones included after a
        first sync, oldest change first; `cursor` is what to send next time, `more` whether
        another page waits."""
        with self.db() as db:
            # The counter first, then only rows up to it: a write committed in between (its row
            # and its counter in one transaction) is left for the next sync, never skipped.
            counter = db.get(UserStorage, user_id)
            last = counter.seq if counter else 0
            query = select(StoredConversation).where(
                StoredConversation.user_id == user_id,
                StoredConversation.seq > since,
                StoredConversation.seq <= last,
            )
            if since == 0:
                query = query.where(StoredConversation.deleted_at.is_(None))
            rows = list(db.scalars(query.order_by(StoredConversation.seq).limit(limit + 1)))
            more = len(rows) > limit
            rows = rows[:limit]
            return {
                "cursor": rows[-1].seq if more else last,
                "more": more,
                "changes": self._envelopes(db, rows),
            }

    def _write_messages(self, db: Session, row: StoredConversation, messages: list[Page]) -> None:
        """Makes the stored messages `messages`, in that order; a message whose content did not
        change keeps its version."""
        existing = {m.id: m for m in self._messages(db, [row.pk])[row.pk]}
        for position, m in enumerate(messages):
            stored = existing.pop(m["id"], None)
            if stored is None:
                stored = StoredMessage(conversation_pk=row.pk, id=m["id"], version=row.version)
                db.add(stored)
            elif message_page(stored) != m:
                stored.version = row.version
            stored.position = position
            set_message(stored, m)
        for gone in existing.values():
            db.delete(gone)

    def _store(
        self, db: Session, counter: UserStorage, row: StoredConversation | None, user_id: int, page: Page
    ) -> Page:
        """Writes `page` as the conversation's next version (a new one when `row` is None)."""
        page = {**page, "messages": with_parents(page["messages"])}
        size = size_of(page)
        seq = self.charge(counter, row.bytes if row else 0, size)
        if row is None:
            row = StoredConversation(user_id=user_id, id=page["id"], version=1, settings={})
            db.add(row)
        else:
            row.version += 1
            # Absent optional fields are absent from the new copy: start from none.
            row.settings, row.folder, row.pinned, row.archived = {}, None, None, None
        row.deleted_at = None
        row.seq, row.bytes = seq, size
        set_fields(row, page)
        db.flush()
        self._write_messages(db, row, page["messages"])
        return envelope(row, page)

    def put(self, user_id: int, page: Page, base_version: int | None) -> Page:
        """Creates (`base_version` None) or replaces the conversation; 409 with the server's copy
        when it exists at another version (deleted ones included: resurrecting one means
        naming its tombstone's version)."""
        with self.writing(user_id) as (db, counter):
            row = self._row(db, user_id, page["id"])
            if row is not None and row.version != base_version:
                raise Conflict(self._envelopes(db, [row])[0])
            if row is None and base_version is not None:
                raise StorageError(
                    404,
                    f"No conversation '{page['id']}' to update: send it without a base version to create it.",
                    "conversation_not_found",
                )
            return self._store(db, counter, row, user_id, page)

    def apply_change(
        self,
        user_id: int,
        conversation_id: str,
        base_version: int,
        fields: Page,
        messages: list[Page],
        removed: list[str],
    ) -> Page:
        """A device's change since `base_version` (fields set, messages added or updated,
        messages removed) merged into the server's copy, as store/merge.ts does between tabs.
        A message another device changed since `base_version`, and this one changed otherwise,
        is kept both ways: this device's copy becomes a sibling (id suffixed `~v<version>`)."""
        with self.writing(user_id) as (db, counter):
            row = self._live(db, user_id, conversation_id)
            stored_rows = self._messages(db, [row.pk])[row.pk]
            stored = {m.id: m for m in stored_rows}
            renamed: dict[str, str] = {}
            for m in messages:
                theirs = stored.get(m["id"])
                if theirs is not None and theirs.version > base_version and message_page(theirs) != m:
                    renamed[m["id"]] = self._sibling_id(
                        m["id"], row.version + 1, {*stored, *renamed.values()}
                    )
            mine = []
            for m in messages:
                m = {**m, "id": renamed.get(m["id"], m["id"])}
                if m.get("parentId") in renamed:  # a follow-up goes with its conflicting copy
                    m["parentId"] = renamed[m["parentId"]]
                mine.append(m)
            if fields.get("current") in renamed:
                fields = {**fields, "current": renamed[fields["current"]]}
            merged = self._merge(stored_rows, mine, set(removed))
            page = conversation_page(row, stored_rows)
            changed = {**page, **fields, "id": conversation_id, "messages": merged}
            for key, value in fields.items():
                if value is None:
                    changed.pop(key, None)
            return self._store(db, counter, row, user_id, changed)

    @staticmethod
    def _sibling_id(message_id: str, version: int, taken: set[str]) -> str:
        """A new id for a conflicting copy: `<id>~v<version>`, shortened to fit the column."""
        n = 0
        while True:
            suffix = f"~v{version}" + (f".{n}" if n else "")
            candidate = message_id[: ID_LENGTH - len(suffix)] + suffix
            if candidate not in taken:
                return candidate
            n += 1

    @staticmethod
    def _merge(stored_rows: list[StoredMessage], mine: list[Page], removed: set[str]) -> list[Page]:
        stored = [message_page(m) for m in stored_rows]
        # Removed messages that another device's messages follow from stay, so no branch is cut loose.
        by_id = {m["id"]: m for m in stored}
        needed: set[str] = set()
        for m in stored:
            if m["id"] in removed:
                continue
            parent = m["parentId"]
            while parent and parent in removed and parent not in needed:
                needed.add(parent)
                parent = by_id[parent]["parentId"] if parent in by_id else None
        updates = {m["id"]: m for m in mine}
        merged = [updates.pop(m["id"], m) for m in stored if m["id"] not in removed or m["id"] in needed]
        return merged + [m for m in mine if m["id"] in updates]

    def delete(self, user_id: int, conversation_id: str, base_version: int | None) -> Page:
        """Deletes the conversation, leaving a tombstone for other devices' next sync."""
        with self.writing(user_id) as (db, counter):
            row = self._live(db, user_id, conversation_id)
            if base_version is not None and row.version != base_version:
                raise Conflict(self._envelopes(db, [row])[0])
            row.seq = self.charge(counter, row.bytes, 0)
            db.execute(delete(StoredMessage).where(StoredMessage.conversation_pk == row.pk))
            row.version += 1
            row.bytes = 0
            row.title, row.settings, row.folder, row.pinned, row.archived = "", {}, None, None, None
            row.deleted_at = now()
            return envelope(row, None)

    def import_many(self, user_id: int, pages: list[Page]) -> Page:
        """A device's local history, on first sign-in: conversations kept with their ids; those
        already here (or deleted here) are skipped, so importing twice changes nothing. All or
        nothing: one over the quota (413) imports none."""
        imported, skipped = [], []
        with self.writing(user_id) as (db, counter):
            ids = [p["id"] for p in pages]
            known = set(
                db.scalars(
                    select(StoredConversation.id).where(
                        StoredConversation.user_id == user_id, StoredConversation.id.in_(ids)
                    )
                )
            )
            for page in pages:
                if page["id"] in known:
                    skipped.append(page["id"])
                    continue
                known.add(page["id"])
                self._store(db, counter, None, user_id, page)
                imported.append(page["id"])
        return {"imported": imported, "skipped": skipped}

    def export(self, user_id: int) -> list[Page]:
        with self.db() as db:
            rows = list(
                db.scalars(
                    select(StoredConversation)
                    .where(StoredConversation.user_id == user_id, StoredConversation.deleted_at.is_(None))
                    .order_by(StoredConversation.created_ms, StoredConversation.pk)
                )
            )
            return [e["conversation"] for e in self._envelopes(db, rows)]

    def fork(
        self, user_id: int, conversation_id: str, message_id: str, new_id: str, title: str | None
    ) -> Page:
        """A new conversation `new_id` holding the branch from the first message to `message_id`."""
        with self.writing(user_id) as (db, counter):
            row = self._live(db, user_id, conversation_id)
            page = conversation_page(row, self._messages(db, [row.pk])[row.pk])
            by_id = {m["id"]: m for m in page["messages"]}
            if message_id not in by_id:
                raise StorageError(
                    404,
                    f"Conversation '{conversation_id}' has no message '{message_id}'.",
                    "message_not_found",
                    "message_id",
                )
            if self._row(db, user_id, new_id) is not None:
                raise StorageError(
                    409, f"Conversation '{new_id}' already exists.", "conversation_exists", "id"
                )
            path: list[Page] = []
            at: str | None = message_id
            while at is not None:
                path.append(by_id[at])
                at = by_id[at]["parentId"]
            fork = {**page, "id": new_id, "messages": path[::-1], "current": message_id}
            if title is not None:
                fork["title"] = title
            return self._store(db, counter, None, user_id, fork)

    # Presets

    def presets(self, user_id: int) -> list[Page]:
        with self.db() as db:
            rows = db.scalars(select(Preset).where(Preset.user_id == user_id).order_by(Preset.name))
            return [{"id": p.id, "name": p.name, "data": p.data, "updated_at": p.updated_at} for p in rows]

    def put_preset(self, user_id: int, preset_id: str, name: str, data: Page) -> Page:
        size = size_of({"name": name, "data": data})
        with self.writing(user_id) as (db, counter):
            row = db.get(Preset, (user_id, preset_id))
            self.charge(counter, row.bytes if row else 0, size)
            if row is None:
                row = Preset(user_id=user_id, id=preset_id)
                db.add(row)
            row.name, row.data, row.bytes, row.updated_at = name, data, size, now()
            return {"id": preset_id, "name": name, "data": data, "updated_at": row.updated_at}

    def delete_preset(self, user_id: int, preset_id: str) -> None:
        self._delete_owned(user_id, Preset, preset_id, "preset")

    def _delete_owned(
        self, user_id: int, table: type[Preset | StoredFile | Document], key: str, what: str
    ) -> None:
        with self.writing(user_id) as (db, counter):
            row = db.get(table, (user_id, key))
            if row is None:
                raise StorageError(404, f"No {what} '{key}'.", f"{what}_not_found")
            self.charge(counter, row.bytes, 0)
            db.delete(row)

    # Files

    def put_file(self, user_id: int, file_id: str, name: str, media_type: str, data: bytes) -> Page:
        with self.writing(user_id) as (db, counter):
            row = db.get(StoredFile, (user_id, file_id))
            self.charge(counter, row.bytes if row else 0, len(data))
            if row is None:
                row = StoredFile(user_id=user_id, id=file_id)
                db.add(row)
            row.name, row.media_type, row.data, row.bytes, row.created_at = (
                name,
                media_type,
                data,
                len(data),
                now(),
            )
            return self._file_view(row)

    @staticmethod
    def _file_view(row: StoredFile) -> Page:
        return {
            "id": row.id,
            "name": row.name,
            "media_type": row.media_type,
            "bytes": row.bytes,
            "created_at": row.created_at,
        }

    def files(self, user_id: int) -> list[Page]:
        with self.db() as db:
            rows = db.scalars(
                select(StoredFile).where(StoredFile.user_id == user_id).order_by(StoredFile.created_at)
            )
            return [self._file_view(r) for r in rows]

    def file(self, user_id: int, file_id: str) -> tuple[Page, bytes]:
        with self.db() as db:
            row = db.get(StoredFile, (user_id, file_id))
            if row is None:
                raise StorageError(404, f"No file '{file_id}'.", "file_not_found")
            return self._file_view(row), row.data

    def delete_file(self, user_id: int, file_id: str) -> None:
        self._delete_owned(user_id, StoredFile, file_id, "file")

    # Documents

    def put_document(
        self, user_id: int, document_id: str, name: str, text: str, model: str | None, chunks: list[Page]
    ) -> Page:
        """A document's extracted text and its chunks (`text`, `embedding`), replacing any before."""
        size = len(text.encode()) + sum(
            len(c["text"].encode()) + 4 * len(c.get("embedding") or []) for c in chunks
        )
        with self.writing(user_id) as (db, counter):
            row = db.get(Document, (user_id, document_id))
            self.charge(counter, row.bytes if row else 0, size)
            if row is None:
                row = Document(user_id=user_id, id=document_id)
                db.add(row)
            else:
                db.execute(
                    delete(DocumentChunk).where(
                        DocumentChunk.user_id == user_id, DocumentChunk.document_id == document_id
                    )
                )
            row.name, row.text, row.model, row.bytes, row.created_at = name, text, model, size, now()
            db.flush()
            db.add_all(
                DocumentChunk(
                    user_id=user_id,
                    document_id=document_id,
                    index=i,
                    text=c["text"],
                    embedding=pack(c.get("embedding")),
                )
                for i, c in enumerate(chunks)
            )
            return self._document_view(row, len(chunks))

    @staticmethod
    def _document_view(row: Document, chunks: int) -> Page:
        return {
            "id": row.id,
            "name": row.name,
            "model": row.model,
            "bytes": row.bytes,
            "chunks": chunks,
            "created_at": row.created_at,
        }

    def documents(self, user_id: int) -> list[Page]:
        with self.db() as db:
            rows = list(
                db.scalars(select(Document).where(Document.user_id == user_id).order_by(Document.created_at))
            )
            counted = db.execute(
                select(DocumentChunk.document_id, func.count())
                .where(DocumentChunk.user_id == user_id)
                .group_by(DocumentChunk.document_id)
            )
            counts: dict[str, int] = {document_id: n for document_id, n in counted}
            return [self._document_view(r, counts.get(r.id, 0)) for r in rows]

    def document(self, user_id: int, document_id: str) -> Page:
        """The document with its text and chunks (embeddings as float lists)."""
        with self.db() as db:
            row = db.get(Document, (user_id, document_id))
            if row is None:
                raise StorageError(404, f"No document '{document_id}'.", "document_not_found")
            chunks = [
                {"text": c.text, "embedding": unpack(c.embedding)}
                for c in db.scalars(
                    select(DocumentChunk)
                    .where(DocumentChunk.user_id == user_id, DocumentChunk.document_id == document_id)
                    .order_by(DocumentChunk.index)
                )
            ]
            return {**self._document_view(row, len(chunks)), "text": row.text, "chunks": chunks}

    def delete_document(self, user_id: int, document_id: str) -> None:
        self._delete_owned(user_id, Document, document_id, "document")
