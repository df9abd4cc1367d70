"""The documented backup procedure, for real: bin/backup (pg_dump, then a copy of the media
folder) and bin/restore (a fresh database and folder, then verify_storage)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from neurons.models import NetworkModel
from neurons.services import model_import
from rendering.engine.zoo import WeightsSpec
from rendering.models import Render
from rendering.services import render_job_run, render_jobs_create
from tests.worker import worker_database_url

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

ROOT = Path(__file__).resolve().parents[2]


def _table_counts(url: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(url) as db:
        tables = [
            row[0]
            for row in db.execute(
                "select table_name from information_schema.tables "
                "where table_schema = 'public' and table_type = 'BASE TABLE' order by 1"
            )
        ]
        return {t: db.execute(f'select count(*) from "{t}"').fetchone()[0] for t in tables}  # type: ignore[index]


def _drop(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as db:
        db.execute(f'drop database if exists "{name}" with (force)')


def _run(script: str, folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "bin" / script), str(folder)], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_a_backup_restores_into_a_fresh_database_and_storage_that_verify(
    tinynet: Any, small_renders: Any, media: Path, tmp_path: Path
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("pg_dump backup: PostgreSQL pass only (SQLite: see docs/BACKUP.md)")
    if not all(shutil.which(tool) for tool in ("pg_dump", "pg_restore", "psql", "createdb")):
        pytest.skip("the PostgreSQL client tools are not installed")
    model: NetworkModel = model_import(
        registry_key="tinynet", weights=WeightsSpec("random", seed=8)
    )
    layer = model.layers.get(name="conv2")
    for job in render_jobs_create(
        layer=layer, technique="channel", params={"size": 32, "steps": 2}, units=[0, 1, 2],
        enqueue=False,
    ):  # fmt: skip
        assert render_job_run(job_id=job.pk) is not None
    assert Render.objects.filter(layer=layer).count() == 3
    source_url = worker_database_url()
    env = {
        **os.environ,
        "DATABASE_URL": source_url,
        "MEDIA_ROOT": str(media),
        "MICROSCOPE_VAR_DIR": str(tmp_path / "var"),
        "PYTHON": sys.executable,
    }
    backup = tmp_path / "backup"
    made = _run("backup", backup, env)
    assert made.returncode == 0, made.stderr
    assert (backup / "database.dump").stat().st_size > 0
    copied = sorted(
        p.relative_to(backup / "media").as_posix() for p in (backup / "media").rglob("*.png")
    )
    assert len(copied) == 6  # three images and three thumbnails

    name = f"{connection.settings_dict['NAME']}_restored"
    restored_url = source_url.rsplit("/", 1)[0] + f"/{name}"
    restored_media = tmp_path / "restored-media"
    _drop(source_url, name)
    try:
        env_restore = {**env, "DATABASE_URL": restored_url, "MEDIA_ROOT": str(restored_media)}
        done = _run("restore", backup, env_restore)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "storage consistent" in done.stdout
        assert _table_counts(restored_url) == _table_counts(source_url)
        again = _run("restore", backup, env_restore)  # never over live data
        assert again.returncode == 2 and "not empty" in again.stderr
        check = subprocess.run(
            [sys.executable, "manage.py", "verify_storage", "--json"],
            cwd=ROOT, env=env_restore, capture_output=True, text=True,
        )  # fmt: skip
        report = json.loads(check.stdout)
        assert check.returncode == 0 and report["ok"]
        assert report["checked"] >= 6 and report["orphans"] == 0
        (restored_media / Render.objects.first().image.name).unlink()  # type: ignore[union-attr]
        broken = subprocess.run(
            [sys.executable, "manage.py", "verify_storage", "--json"],
            cwd=ROOT, env=env_restore, capture_output=True, text=True,
        )  # fmt: skip
        assert broken.returncode == 1 and json.loads(broken.stdout)["missing"] == 1
    finally:
        _drop(source_url, name)
