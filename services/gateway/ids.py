"""The one pattern every session id and user id must match, in a path, a query or a body.

Ids end up inside Redis key names, where ``:`` separates the parts and ``/`` separates an
owner from a user (``shared/streams.py``): an id holding either could name another key
(``<id>:events`` is a session's event stream, not a session). So neither is allowed, nor a
leading dot (``..``), nor anything outside a conservative set of characters.
"""

from typing import Annotated

from fastapi import Path, Query
from pydantic import Field

ID_PATTERN = r"^[A-Za-z0-9_@-][A-Za-z0-9_.@-]{0,127}$"
ID_OR_EMPTY_PATTERN = r"^(?:[A-Za-z0-9_@-][A-Za-z0-9_.@-]{0,127})?$"
ID_DESCRIPTION = "letters, digits and _ - . @ (not first), at most 128"

Id = Annotated[str, Field(pattern=ID_PATTERN, description=ID_DESCRIPTION)]
IdOrEmpty = Annotated[str, Field(pattern=ID_OR_EMPTY_PATTERN, description=ID_DESCRIPTION)]
PathId = Annotated[str, Path(pattern=ID_PATTERN, description=ID_DESCRIPTION)]
QueryId = Annotated[str, Query(pattern=ID_PATTERN, description=ID_DESCRIPTION)]
