from collections.abc import Callable

import psycopg

from tests.api_client import ApiClient, Response

Send = Callable[..., Response]


def test_delete_conversation_cascades_to_its_messages(
    api: ApiClient, send_chat: Send, alice: str, token_for: Callable[..., str], direct_url: str
) -> None:
    conversation_id = send_chat(alice, "add buy milk").json()["conversation_id"]
    send_chat(alice, "list my tasks", conversation_id)
    other = send_chat(alice, "add keep me").json()["conversation_id"]
    response = api.delete(f"/api/{alice}/conversations/{conversation_id}", token=token_for(alice))
    assert response.status == 204
    assert response.function == "DeleteConversationFunction"
    with psycopg.connect(direct_url) as connection:
        counts = dict(
            connection.execute(
                "SELECT conversation_id, count(*) FROM message GROUP BY conversation_id"
            ).fetchall()
        )
    assert counts == {other: 2}
    again = api.delete(f"/api/{alice}/conversations/{conversation_id}", token=token_for(alice))
    assert again.status == 404
    # The tasks the chat created are the user's tasks: they stay.
    titles = [t["title"] for t in api.get(f"/api/{alice}/tasks", token=token_for(alice)).json()]
    assert titles == ["keep me", "buy milk"]


def test_delete_conversation_of_another_user_is_404_and_kept(
    api: ApiClient, send_chat: Send, alice: str, bob: str, token_for: Callable[..., str]
) -> None:
    conversation_id = send_chat(alice, "add mine").json()["conversation_id"]
    response = api.delete(f"/api/{bob}/conversations/{conversation_id}", token=token_for(bob))
    assert response.status == 404
    still = api.get(
        f"/api/{alice}/conversations/{conversation_id}/messages", token=token_for(alice)
    )
    assert len(still.json()["items"]) == 2


def test_delete_conversation_needs_auth(api: ApiClient, alice: str) -> None:
    assert api.delete(f"/api/{alice}/conversations/1").status == 401


def test_chat_in_deleted_conversation_is_404(
    api: ApiClient, send_chat: Send, alice: str, token_for: Callable[..., str]
) -> None:
    conversation_id = send_chat(alice, "hello").json()["conversation_id"]
    api.delete(f"/api/{alice}/conversations/{conversation_id}", token=token_for(alice))
    assert send_chat(alice, "hello again", conversation_id).status == 404
