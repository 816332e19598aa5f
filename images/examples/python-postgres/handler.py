# A function that queries PostgreSQL over egress. Its policy must allow the
# database's address and port, e.g. {"Egress": {"Allow": ["10.0.5.7/32:5432"]}}.
#
# The connection is opened during init, so warm invocations reuse it. A
# snapshot is taken after init, and every restored copy would otherwise hold
# the same connection: thaw restores it closed instead, and the hook below
# opens a connection of the copy's own before the first invocation.
import os

import psycopg2

import thaw


def connect():
    return psycopg2.connect(
        host=os.environ["PGHOST"],
        port=int(os.environ.get("PGPORT", "5432")),
        user=os.environ.get("PGUSER", "postgres"),
        dbname=os.environ.get("PGDATABASE", "postgres"),
        connect_timeout=5,
    )


CONNECTION = connect()
CONNECTIONS_OPENED = 1


@thaw.register_before_snapshot
def close_before_snapshot():
    # Not required (thaw closes what a snapshot holds), but polite: the
    # server sees a clean goodbye instead of a connection that vanished.
    CONNECTION.close()


@thaw.register_after_restore
def reconnect():
    global CONNECTION, CONNECTIONS_OPENED
    CONNECTION = connect()
    CONNECTIONS_OPENED += 1


def handler(event, context):
    with CONNECTION.cursor() as cursor:
        cursor.execute(event.get("sql", "SELECT 1"))
        rows = cursor.fetchall()
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    return {"rows": rows, "backend_pid": backend, "connections_opened": CONNECTIONS_OPENED}
