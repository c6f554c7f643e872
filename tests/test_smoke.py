from fastapi.testclient import TestClient

from tests.factories import CUSTOMER, customer


def test_create_and_read_a_customer(client: TestClient, admin: dict[str, str]) -> None:
    created = customer(client, admin)
    response = client.get(f"{CUSTOMER}/customer/{created['id']}", headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "BMW AG"
    assert response.json()["status"] == "prospect"
