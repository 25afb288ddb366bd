"""psycopg2 against a PostgreSQL endpoint (the embedded one, or a server), as a
notebook would use it.
    /usr/bin/python3 tests/clients/psycopg2_clients.py <scenario> <dsn> ...
Prints one line of results per scenario as JSON; exits 1 on an unexpected failure.
"""
import io
import json
import sys
import threading
import time

import psycopg2
import psycopg2.errors


def copy(dsn, table):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.copy_expert(f"COPY {table} FROM STDIN WITH (FORMAT csv)", io.StringIO('401,psycopg copy\n402,"psycopg, two"\n'))
        out = io.StringIO()
        cur.copy_expert(f"COPY (SELECT * FROM {table} WHERE id > 400 ORDER BY 1) TO STDOUT WITH (FORMAT csv)", out)
        print(json.dumps({"copied_in": cur.rowcount, "out": out.getvalue()}))


def canceled_after(conn, sql, delay=0.3):
    """Runs sql on conn, whose cancel() is called after `delay` s: what came of it, and how long it took."""
    timer = threading.Timer(delay, conn.cancel)
    timer.start()
    started = time.monotonic()
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
        outcome = "completed"
    except psycopg2.errors.QueryCanceled as error:
        outcome = f"canceled: {error.pgcode}"
    return outcome, time.monotonic() - started


def cancel(dsn, seconds):
    """A statement of `seconds` canceled after 0.3 s: how long until it returns, and with what."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    outcome, elapsed = canceled_after(conn, f"SELECT pg_sleep({seconds})")
    with conn.cursor() as cur:  # the connection is usable after
        cur.execute("SELECT 1")
        usable = cur.fetchone()[0] == 1
    conn.close()
    print(json.dumps({"outcome": outcome, "seconds": round(elapsed, 2), "usable": usable}))


def cancel_waiting(dsn, table):
    """One client holds a table's lock in a transaction (on the embedded database: the session); another's
    statement on the table waits for it and is canceled."""
    holder = psycopg2.connect(dsn)
    with holder.cursor() as cur:
        cur.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")  # in the transaction psycopg2 opened
    waiter = psycopg2.connect(dsn)
    waiter.autocommit = True
    outcome, elapsed = canceled_after(waiter, f"SELECT count(*) FROM {table}")
    holder.rollback()
    holder.close()
    waiter.close()
    print(json.dumps({"outcome": outcome, "seconds": round(elapsed, 2)}))


def settings(dsn):
    """SET in one connection, seen there only; startup options applied. (psycopg2 itself SETs DateStyle to
    ISO when the server reports another, which a server reports back.)"""
    a = psycopg2.connect(dsn, options="-c DateStyle=German -c statement_timeout=4321", application_name="client-a")
    b = psycopg2.connect(dsn, application_name="client-b")
    a.autocommit = b.autocommit = True
    show = "SELECT current_setting('DateStyle'), current_setting('statement_timeout'), current_setting('search_path'), current_setting('application_name')"
    with a.cursor() as ca, b.cursor() as cb:
        ca.execute("SET search_path = pg_catalog")
        ca.execute(show)
        seen_a = ca.fetchone()
        reported_a = a.get_parameter_status("DateStyle")
        cb.execute(show)
        seen_b = cb.fetchone()
    a.close()
    c = psycopg2.connect(dsn)
    with c.cursor() as cc:
        cc.execute(show)
        seen_c = cc.fetchone()
    c.close()
    print(json.dumps({"a": seen_a, "reported_a": reported_a, "b": seen_b, "later": seen_c}))


if __name__ == "__main__":
    scenario, dsn, *rest = sys.argv[1:]
    {"copy": lambda: copy(dsn, *rest), "cancel": lambda: cancel(dsn, *rest), "cancel_waiting": lambda: cancel_waiting(dsn, *rest),
     "settings": lambda: settings(dsn)}[scenario]()
