"""`DATABASE_URL` → DATABASES: PostgreSQL connections prepare the statements they repeat
(planned once per connection), unless `DATABASE_PREPARED` is off for a pooler."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from microscope_site.database import PREPARE_THRESHOLD, database_from_url
from neurons.models import NetworkModel


def test_postgresql_binds_on_the_server_and_prepares_what_it_repeats() -> None:
    found = database_from_url(
        "postgresql://me:p%40ss@db.example:6543/site?sslmode=require", conn_max_age=30
    )
    assert found["NAME"] == "site" and found["PASSWORD"] == "p@ss" and found["PORT"] == "6543"
    assert found["OPTIONS"] == {
        "sslmode": "require",
        "server_side_binding": True,
        "prepare_threshold": PREPARE_THRESHOLD,
    }


def test_prepared_statements_can_be_turned_off_for_a_pooler() -> None:
    found = database_from_url("postgresql://db.example/site", conn_max_age=0, prepared=False)
    assert found["OPTIONS"] == {}


def test_sqlite_and_unknown_schemes() -> None:
    assert database_from_url("sqlite:////tmp/x.db", conn_max_age=0)["NAME"] == "/tmp/x.db"
    with pytest.raises(ImproperlyConfigured, match="not supported"):
        database_from_url("mysql://db/site", conn_max_age=0)


@pytest.mark.django_db
def test_a_repeated_query_is_prepared_and_answers_the_same() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    asked = NetworkModel.objects.filter(display_name__startswith="prepared test")
    answers = [list(asked.filter(slug=f"m{n}").values_list("pk")) for n in range(3)]
    assert answers == [[], [], []]
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any(
        'FROM "neurons_networkmodel"' in statement and "display_name" in statement
        for statement in prepared
    ), prepared
