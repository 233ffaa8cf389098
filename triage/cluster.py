"""Helpers for running the DAGs on a distributed Airflow (CeleryExecutor).

``worker_hostname`` is meant for ``[core] hostname_callable``: on one machine several Celery
workers share the host name, so each can be given its own (``TRIAGE_WORKER_NAME``) and the task
instances show which worker ran them. On real hosts, leave it unset and the FQDN is used.
"""

from __future__ import annotations

import socket

from triage.config import get_settings


def worker_hostname() -> str:
    return get_settings().worker_name or socket.getfqdn()
