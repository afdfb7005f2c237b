"""The Task model family: the table, what a client may send, and what it gets back."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StrictBool, StringConstraints, field_validator
from sqlalchemy import BigInteger, Column, Identity, Index
from sqlmodel import Field, SQLModel

from todo_core.db import UTCDateTime, UTCTimestamp, utc_now
from todo_core.ids import USER_ID_MAX
from todo_core.text import SingleLine, SingleLineSchema, StorableText, TextSchema, Trimmed

TITLE_MAX = 200
DESCRIPTION_MAX = 1000

# The constraints before the trimming in this list: the trimming (a before-validator) then wraps
# the constrained string, which reports its length in characters ("String should have at most
# 200 characters"); after it, they would be a generic check ("Value should have at most 200
# items after validation").
Title = Annotated[
    str,
    StringConstraints(min_length=1, max_length=TITLE_MAX),
    Trimmed,
    SingleLine,
    SingleLineSchema,
]
"""1 to 200 characters after trimming, on one line."""

Description = Annotated[
    str, StringConstraints(max_length=DESCRIPTION_MAX), StorableText, TextSchema
]


class TaskStatus(StrEnum):
    all = "all"
    pending = "pending"
    completed = "completed"


class TaskBase(SQLModel):
    title: str = Field(max_length=TITLE_MAX)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)


class Task(TaskBase, table=True):
    __tablename__ = "task"
    # Serves "a user's tasks, newest first", with or without a status filter.
    __table_args__ = (Index("ix_task_user_id_id", "user_id", "id"),)

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(always=False), primary_key=True)
    )
    user_id: str = Field(max_length=USER_ID_MAX)
    completed: bool = Field(default=False)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


# Request models refuse unknown fields: a misspelt field is a client bug, not something to drop.
REQUEST_CONFIG = ConfigDict(extra="forbid")


class TaskCreate(SQLModel):
    model_config = REQUEST_CONFIG  # type: ignore[assignment]  # SQLModel widens the type

    title: Title
    description: Description | None = None


class TaskUpdate(SQLModel):
    """A partial update: fields left out are kept; ``description: null`` clears the description."""

    model_config = REQUEST_CONFIG  # type: ignore[assignment]

    # Optional but not nullable (the schema says so too); description: null is allowed. The
    # default None is never validated and only stands for "not sent" (model_dump(exclude_unset)).
    # Not "Title | None": a union reports a bad value once per member, with the validator
    # chain's repr as its loc, and asks for the null that _not_null refuses.
    title: Title = Field(default=None)
    description: Description | None = None
    completed: StrictBool = Field(default=None)

    @field_validator("title", "completed", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Only runs for values the client sent: leaving a field out is fine, sending null is not.
        if value is None:
            raise ValueError("may be omitted but not null")
        return value


# A task as the API returns it: a plain pydantic model, not an SQLModel (it maps no table), since
# SQLModel's instance hooks made building one cost about 4 us against 0.7 us, and a list of 100
# tasks builds 100. (No docstring: it would become the schema's description in the OpenAPI.)
class TaskPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: str
    title: str
    description: str | None
    completed: bool
    created_at: UTCTimestamp
    updated_at: UTCTimestamp
