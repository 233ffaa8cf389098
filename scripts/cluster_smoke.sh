#!/usr/bin/env bash
# make cluster-smoke: the production profile on this machine, then a fault.
#   PostgreSQL for Airflow's metadata and the product database, CeleryExecutor with Redis,
#   scheduler + API server + DAG processor + two Celery workers (concurrency 1 each).
# 1. trigger nightly_triage for the sample night; check tasks ran on both workers and every
#    ticket landed in PostgreSQL exactly once (one prediction, one queue item each);
# 2. trigger a bigger synthetic night, kill -9 the worker running a classify task mid-task, start
#    a replacement, and check the retry converges: no duplicate, no missing queue item.
# Everything started here is stopped on exit; the databases it made are dropped.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=$ROOT/.venv/bin
PG=${TRIAGE_SMOKE_PG:-postgresql+psycopg://postgres@127.0.0.1:5432}
REDIS=${TRIAGE_SMOKE_REDIS:-redis://127.0.0.1:6379/7}
PORT=${TRIAGE_SMOKE_PORT:-28080}
RUN_TAG=$(date +%s)$$
AF_DB=triage_smoke_af_$RUN_TAG
SCHEMA=smoke_$RUN_TAG
SMOKE=$ROOT/var/cluster-smoke
NIGHT=2026-11-20
FAULT_NIGHT=2026-11-21
FAULT_N=${TRIAGE_SMOKE_FAULT_N:-30000}

if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "port $PORT is already in use (another cluster-smoke or Airflow API server?); set TRIAGE_SMOKE_PORT"; exit 1
fi
rm -rf "$SMOKE"; mkdir -p "$SMOKE/logs"
PIDS=()
cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  sleep 3
  for pid in "${PIDS[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  "$BIN/python" - "$PG" "$AF_DB" "$SCHEMA" <<'PY' || true
import sys, sqlalchemy as sa
pg, af_db, schema = sys.argv[1:]
e = sa.create_engine(f"{pg}/postgres", isolation_level="AUTOCOMMIT")
with e.connect() as c:
    c.execute(sa.text(f'DROP DATABASE IF EXISTS "{af_db}" WITH (FORCE)'))
e = sa.create_engine(f"{pg}/test", isolation_level="AUTOCOMMIT")
with e.connect() as c:
    c.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
PY
  if [ $rc -ne 0 ]; then echo "cluster-smoke FAILED (rc=$rc); logs in $SMOKE/logs"; fi
  exit $rc
}
trap cleanup EXIT INT TERM

"$BIN/python" - "$PG" "$AF_DB" <<'PY'
import sys, sqlalchemy as sa
pg, af_db = sys.argv[1:]
e = sa.create_engine(f"{pg}/postgres", isolation_level="AUTOCOMMIT")
with e.connect() as c:
    c.execute(sa.text(f'CREATE DATABASE "{af_db}"'))
PY

# --- configuration: everything by environment, as a deployment would set it ---------------------
export AIRFLOW_HOME=$SMOKE/airflow
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=$PG/$AF_DB
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC=$PG/$AF_DB  # psycopg 3 does async itself (no asyncpg)
export AIRFLOW__CORE__EXECUTOR=CeleryExecutor
export AIRFLOW__CELERY__BROKER_URL=$REDIS
export AIRFLOW__CELERY__RESULT_BACKEND=db+$PG/$AF_DB
export AIRFLOW__CELERY__WORKER_CONCURRENCY=1
export AIRFLOW__CORE__DAGS_FOLDER=$ROOT/dags
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__HOSTNAME_CALLABLE=triage.cluster.worker_hostname
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$PORT/execution/
export AIRFLOW__API__PORT=$PORT
export AIRFLOW__API_AUTH__JWT_SECRET=smoke-$RUN_TAG
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=5
export AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT=30   # a killed worker's task is failed (and retried) fast
export AIRFLOW__LOGGING__LOGGING_LEVEL=INFO
export TRIAGE_DATABASE_URL=$PG/test
export TRIAGE_DB_SCHEMA=$SCHEMA
export TRIAGE_INBOX_DIR=$SMOKE/inbox
export TRIAGE_VAR_DIR=$SMOKE/var
export TRIAGE_RETRY_DELAY_S=5
export TRIAGE_CLASSIFY_SHARDS=4
export TRIAGE_PII_SALT=smoke-$RUN_TAG  # the DAGs refuse the public default on PostgreSQL

mkdir -p "$TRIAGE_INBOX_DIR"
cp -r "$ROOT/data_samples/inbox/$NIGHT" "$TRIAGE_INBOX_DIR/"
"$BIN/python" - "$TRIAGE_INBOX_DIR/$FAULT_NIGHT" "$FAULT_N" <<'PY'
import sys, datetime as dt
from pathlib import Path
from triage.synth import generate_tickets
from triage.tables import write_table
out, n = Path(sys.argv[1]), int(sys.argv[2])
d = dt.date.fromisoformat(out.name)
write_table(generate_tickets(n, seed=21, start=d, end=d, labeled=False).tickets, out / "export.parquet")
PY

echo "==> databases: Airflow metadata $AF_DB, product schema test.$SCHEMA"
"$BIN/triage" db upgrade
"$BIN/airflow" db migrate >"$SMOKE/logs/db-migrate.log" 2>&1

start() {  # start NAME CMD… in its own process group, logging to logs/NAME.log
  local name=$1; shift
  setsid "$@" >"$SMOKE/logs/$name.log" 2>&1 &
  PIDS+=($!)
  echo "    started $name (pid $!)"
}
echo "==> starting the cluster"
start api-server "$BIN/airflow" api-server --port "$PORT"
start scheduler "$BIN/airflow" scheduler
start dag-processor "$BIN/airflow" dag-processor
TRIAGE_WORKER_NAME=worker-1 start worker-1 "$BIN/airflow" celery worker --celery-hostname worker-1@%h
W1=${PIDS[-1]}
TRIAGE_WORKER_NAME=worker-2 start worker-2 "$BIN/airflow" celery worker --celery-hostname worker-2@%h
W2=${PIDS[-1]}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND…
  local limit=$1 what=$2; shift 2
  for _ in $(seq "$limit"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  echo "timed out after ${limit}s waiting for $what"; return 1
}
wait_for 120 "the API server" curl -sf "http://127.0.0.1:$PORT/api/v2/monitor/health"
wait_for 180 "the DAG processor to parse nightly_triage" \
  bash -c "\"$BIN/airflow\" dags list -o plain 2>/dev/null | grep -q '^nightly_triage'"
"$BIN/airflow" dags unpause nightly_triage >/dev/null

run_state() {  # run_state RUN_ID → queued|running|success|failed
  "$BIN/python" - "$PG/$AF_DB" "$1" <<'PY'
import sys, sqlalchemy as sa
e = sa.create_engine(sys.argv[1])
with e.connect() as c:
    print(c.execute(sa.text("select state from dag_run where run_id = :r"), {"r": sys.argv[2]}).scalar() or "none")
PY
}
wait_run() {  # wait_run RUN_ID SECONDS
  local state
  for _ in $(seq "$2"); do
    state=$(run_state "$1")
    case $state in success) return 0 ;; failed) echo "run $1 failed"; return 1 ;; esac
    sleep 1
  done
  echo "run $1 still $state after $2 s"; return 1
}

echo "==> 1/2 nightly_triage for $NIGHT on the cluster"
"$BIN/airflow" dags trigger nightly_triage -r "smoke-$NIGHT" -c "{\"night\": \"$NIGHT\"}" >/dev/null
wait_run "smoke-$NIGHT" 600
"$BIN/python" scripts/cluster_check.py --airflow-db "$PG/$AF_DB" --run-id "smoke-$NIGHT" --night "$NIGHT" \
  --expect-workers worker-1,worker-2

echo "==> 2/2 fault: kill -9 a worker in the middle of a classify task ($FAULT_N tickets, night $FAULT_NIGHT)"
"$BIN/airflow" dags trigger nightly_triage -r "smoke-$FAULT_NIGHT" -c "{\"night\": \"$FAULT_NIGHT\"}" >/dev/null
victim=""
for _ in $(seq 300); do
  victim=$("$BIN/python" - "$PG/$AF_DB" "smoke-$FAULT_NIGHT" <<'PY'
import sys, sqlalchemy as sa
e = sa.create_engine(sys.argv[1])
with e.connect() as c:
    print(c.execute(sa.text(
        "select hostname from task_instance where run_id = :r and task_id = 'classify' and state = 'running' "
        "order by start_date limit 1"), {"r": sys.argv[2]}).scalar() or "")
PY
)
  [ -n "$victim" ] && break
  sleep 1
done
[ -n "$victim" ] || { echo "no classify task started"; exit 1; }
sleep 3  # let it write part of its shard
if [ "$victim" = worker-1 ]; then vpid=$W1; else vpid=$W2; fi
echo "    killing $victim (process group $vpid) with SIGKILL while it classifies"
kill -KILL -- "-$vpid"
TRIAGE_WORKER_NAME=$victim-replacement start "$victim-replacement" "$BIN/airflow" celery worker --celery-hostname "$victim-replacement@%h"
wait_run "smoke-$FAULT_NIGHT" 900
"$BIN/python" scripts/cluster_check.py --airflow-db "$PG/$AF_DB" --run-id "smoke-$FAULT_NIGHT" --night "$FAULT_NIGHT" \
  --expect-retry classify
echo "cluster-smoke passed"
