from tests.api_client import ApiClient
from tests.wire_tap import WireTap


def test_health_without_auth_ok(api: ApiClient) -> None:
    response = api.get("/health")
    assert response.status == 200
    assert response.json() == {"status": "ok", "database": "not checked"}
    assert response.function == "HealthFunction"


def test_health_check_database_ok(api: ApiClient) -> None:
    response = api.get("/health", params={"check_database": "true"})
    assert response.status == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_health_bad_query_value_is_422(api: ApiClient) -> None:
    response = api.get("/health", params={"check_database": "maybe"})
    assert response.status == 422
    assert response.json()["detail"][0]["loc"] == ["query", "check_database"]


def test_health_pings_the_database_only_when_asked(api: ApiClient, wire: WireTap) -> None:
    asked, asked_counts = wire.measure(lambda: api.get("/health?check_database=true"))
    plain, plain_counts = wire.measure(lambda: api.get("/health"))
    assert (asked.status, plain.status) == (200, 200)
    assert asked_counts.round_trips == 1, asked_counts.sql  # SELECT 1 on the warm connection
    assert plain_counts.round_trips == 0, plain_counts.sql
