"""Sending a task to the broker, by name: the one place the site publishes Celery messages."""

import logging
from typing import Any

from kombu.exceptions import OperationalError as BrokerError

from microscope_site.celery import app

logger = logging.getLogger(__name__)

__all__ = ["BROKER_UNREACHABLE", "NOT_QUEUED", "task_send"]

# The start of a job row's error when its task could not be sent (the broker was down): the row
# stays queued, and the reaper or a retry sends it again.
NOT_QUEUED = "not queued:"
BROKER_UNREACHABLE = f"{NOT_QUEUED} broker unreachable"

# Tasks are sent after the job row is committed, often inside a web request: a dead or hung
# broker must answer within about a second, not after kombu's default retries (4 s connect
# timeout, no read timeout at all on Redis: a broker that accepts and never answers hangs the
# request for minutes).
PUBLISH_TIMEOUT_S = 1.0
PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.25,
    "interval_max": 0.25,
}


def _publish_transport_options(broker_url: str) -> dict[str, float]:
    scheme = broker_url.partition("://")[0]
    if scheme in {"redis", "rediss", "sentinel"}:
        return {"socket_timeout": PUBLISH_TIMEOUT_S, "socket_connect_timeout": PUBLISH_TIMEOUT_S}
    if scheme in {"amqp", "amqps", "pyamqp"}:
        return {"read_timeout": PUBLISH_TIMEOUT_S, "write_timeout": PUBLISH_TIMEOUT_S}
    return {}  # the filesystem transport of the embedded default writes a file


def task_send(name: str, *, args: list[Any], task_id: str, queue: str) -> str:
    """Publish the task called `name`; "" once the broker has it, else the note for the job row.

    Sent by name, so a service never imports a task module. Never raises: the caller's row is
    committed already, and a request must not fail because the broker is down. The note starts
    with `NOT_QUEUED` ("not queued: broker unreachable (…)"); a retry or the reaper sends the
    job again.
    """
    try:
        with app.connection_for_write(
            connect_timeout=PUBLISH_TIMEOUT_S,
            transport_options=_publish_transport_options(str(app.conf.broker_url or "")),
        ) as connection:
            app.send_task(
                name,
                args=args,
                task_id=task_id,
                queue=queue,
                connection=connection,
                retry_policy=PUBLISH_RETRY_POLICY,
            )
    except (BrokerError, OSError) as error:
        logger.warning("%s not queued, broker unreachable: %s", name, error)
        return f"{BROKER_UNREACHABLE} ({error})"
    except Exception as error:
        logger.exception("%s not queued", name)
        return f"{NOT_QUEUED} {type(error).__name__}: {error}"
    return ""
