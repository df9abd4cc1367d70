"""The storage code against an S3-compatible server on loopback (moto's server mode), through
django-storages' S3Storage and boto3: real HTTP requests, no mock of our own code."""

import hashlib
import json
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.test import Client

from microscope_site.storage import store_content
from neurons.models import NetworkModel
from neurons.services import model_import
from rendering.engine.zoo import WeightsSpec
from rendering.integrity import verify_storage
from rendering.models import Render, RenderJob
from rendering.services import render_job_run, render_jobs_create
from tests.servers import free_port, wait_for_port

pytestmark = pytest.mark.django_db

SMALL = {"size": 32, "steps": 2}
KEYS = {"access_key": "testing", "secret_key": "testing", "region_name": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer  # a dev dependency: missing, the tests fail

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    wait_for_port(port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def bucket(s3_endpoint: str, settings: Any) -> Any:
    import boto3

    name = f"microscope-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id=KEYS["access_key"],
        aws_secret_access_key=KEYS["secret_key"],
        region_name=KEYS["region_name"],
    )
    client.create_bucket(Bucket=name)
    # Renders are public (querystring_auth off, long-cached URLs): a bucket policy says so.
    public_read = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{name}/*",
            }
        ],
    }
    client.put_bucket_policy(Bucket=name, Policy=json.dumps(public_read))
    settings.STORAGES = {
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": name,
                "endpoint_url": s3_endpoint,
                "querystring_auth": False,
                "file_overwrite": False,
                **KEYS,
            },
        },
        "staticfiles": settings.STORAGES["staticfiles"],
    }
    client.bucket_name = name
    return client


def _keys(bucket: Any) -> list[str]:
    listed = bucket.list_objects_v2(Bucket=bucket.bucket_name)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def test_content_addressed_files_round_trip_through_the_bucket(bucket: Any) -> None:
    name, sha = store_content(b"a render's bytes", folder="renders")
    assert name == f"renders/{sha[:2]}/{sha}.png" and _keys(bucket) == [name]
    stored = bucket.get_object(Bucket=bucket.bucket_name, Key=name)["Body"].read()
    assert stored == b"a render's bytes"
    assert store_content(b"a render's bytes", folder="renders") == (name, sha)
    assert _keys(bucket) == [name]  # reused, not a second object
    bucket.put_object(Bucket=bucket.bucket_name, Key=name, Body=b"a ren")  # a broken upload
    assert store_content(b"a render's bytes", folder="renders") == (name, sha)
    assert bucket.get_object(Bucket=bucket.bucket_name, Key=name)["Body"].read() == stored


@pytest.fixture
def tiny(tinynet: Any, small_renders: Any) -> NetworkModel:
    return model_import(registry_key="tinynet", weights=WeightsSpec("random", seed=7))


def test_a_render_is_stored_in_the_bucket_and_served_from_it(
    bucket: Any, tiny: NetworkModel, client: Client, s3_endpoint: str
) -> None:
    layer = tiny.layers.get(name="conv2")
    (job,) = render_jobs_create(
        layer=layer, technique="channel", params=SMALL, units=[3], enqueue=False
    )
    assert render_job_run(job_id=job.pk) is not None
    render = Render.objects.get(unit__layer=layer, unit__index=3)
    assert _keys(bucket) == sorted([render.image.name, render.thumbnail.name])
    url = default_storage.url(render.image.name)
    assert url == f"{s3_endpoint}/{bucket.bucket_name}/{render.image.name}"
    with urllib.request.urlopen(url) as response:  # what a browser fetches
        assert hashlib.sha256(response.read()).hexdigest() == render.image_sha256
    page = client.get("/models/tinynet/conv2/3/")
    assert page.status_code == 200 and url in page.content.decode()
    assert verify_storage().ok


def test_verify_storage_finds_deleted_and_corrupted_objects_in_the_bucket(
    bucket: Any, tiny: NetworkModel, django_capture_on_commit_callbacks: Any
) -> None:
    layer = tiny.layers.get(name="conv2")
    (job,) = render_jobs_create(
        layer=layer, technique="channel", params=SMALL, units=[0, 1, 2], enqueue=False
    )
    assert render_job_run(job_id=job.pk) is not None
    first, second, third = Render.objects.filter(unit__layer=layer).order_by("unit__index")
    bucket.delete_object(Bucket=bucket.bucket_name, Key=first.image.name)
    bucket.put_object(Bucket=bucket.bucket_name, Key=second.image.name, Body=b"garbage")
    bucket.put_object(Bucket=bucket.bucket_name, Key="renders/00/stray.png", Body=b"orphan")
    report = verify_storage()
    assert (report.missing, report.corrupt, report.orphans) == (1, 1, 1)
    assert {d["name"] for d in report.details} == {
        first.image.name,
        second.image.name,
        "renders/00/stray.png",
    }
    with django_capture_on_commit_callbacks(execute=False):
        repaired = verify_storage(repair=True)
    assert repaired.repaired == 2
    assert list(Render.objects.filter(unit__layer=layer)) == [third]
    assert second.image.name not in _keys(bucket)  # wrong bytes under its content name
    assert third.image.name in _keys(bucket) and "renders/00/stray.png" in _keys(bucket)
    queued = RenderJob.objects.filter(status="queued").values_list("unit_start", "unit_stop")
    assert sorted(queued) == [(0, 2)]
