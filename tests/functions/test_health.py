from tests.api_client import ApiClient


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
