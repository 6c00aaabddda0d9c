"""The assistant's conversations and memory belong to the API key that made them: another
presenter can neither read nor delete a conversation, nor recall a user's memory by naming
the same ``user_id``; an admin may manage any conversation."""

import httpx
import pytest

from tests.gateway.test_session_access import Keys, as_, http, keys  # noqa: F401 (fixtures)

pytestmark = pytest.mark.redis


async def test_a_conversation_is_its_owners(http: httpx.AsyncClient, keys: Keys) -> None:  # noqa: F811
    created = await http.post("/session", json={"user_id": "sam"}, headers=as_(keys.owner))
    assert created.status_code == 201, created.text
    session_id = created.json()["session_id"]
    path = f"/session/{session_id}"
    other = await http.get(path, headers=as_(keys.other_presenter))
    assert other.status_code == 403 and "another API key" in other.json()["detail"]
    assert (await http.delete(path, headers=as_(keys.other_presenter))).status_code == 403
    assert (await http.get(path, headers=as_(keys.owner))).status_code == 200
    assert (await http.get(path, headers=as_(keys.admin))).status_code == 200
    assert (await http.delete(path, headers=as_(keys.owner))).status_code == 200
    assert (await http.get(path, headers=as_(keys.owner))).status_code == 404


async def test_memory_is_kept_per_key_and_user(http: httpx.AsyncClient, keys: Keys) -> None:  # noqa: F811
    entry = {"user_id": "sam", "user_text": "My dog is called Biscuit.", "assistant_text": "Ok."}
    added = await http.post("/memory/add", json=entry, headers=as_(keys.owner))
    assert added.status_code == 201, added.text
    query = {"user_id": "sam", "query_text": "what is my dog called"}
    mine = await http.post("/memory/query", json=query, headers=as_(keys.owner))
    assert [r["metadata"]["user_text"] for r in mine.json()["results"]] == [entry["user_text"]]
    theirs = await http.post("/memory/query", json=query, headers=as_(keys.other_presenter))
    assert theirs.status_code == 200 and theirs.json()["results"] == []
    summary = await http.get("/memory/summary?user_id=sam", headers=as_(keys.other_presenter))
    assert summary.json()["total_entries"] == 0
    own = await http.get("/memory/summary?user_id=sam", headers=as_(keys.owner))
    assert own.json()["total_entries"] == 1
