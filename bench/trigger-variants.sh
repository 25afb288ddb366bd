#!/usr/bin/env bash
# Where the insert trigger's cost goes: pgbench single-row INSERTs (4 clients, 4 s
# runs, alternating, medians of 5) into a plain table, a table with a real listener
# (the insert trigger as rendered), one whose trigger only appends the jsonb key to a
# log like superduper._changes (no wake-up lock), and one appending a text[] key
# instead of jsonb (with the lock). A one-off experiment, not part of `make bench`:
#
#   make build pg && bench/trigger-variants.sh
set -e
cd "$(dirname "$0")/.."
URI=$(scripts/pg.sh uri); BASE=${URI%/*}; U="$BASE/trig_exp"
psql "$URI" -qc "DROP DATABASE IF EXISTS trig_exp" -c "CREATE DATABASE trig_exp"
node bin/superduper.js install "$U" >/dev/null
psql "$U" -q <<'SQL'
CREATE TABLE plain_t (id bigserial PRIMARY KEY, body text NOT NULL);
CREATE TABLE cur_t (id bigserial PRIMARY KEY, body text NOT NULL);
CREATE TABLE nolock_t (id bigserial PRIMARY KEY, body text NOT NULL);
CREATE TABLE textpk_t (id bigserial PRIMARY KEY, body text NOT NULL);
SELECT superduper.apply('{"type":"model","name":"busy","runtime":"function","output":{"type":"vector","dim":16}}');
SELECT superduper.apply('{"type":"listener","name":"cur","model":"busy","table":"cur_t","keys":["body"]}');
CREATE TABLE public.log_json (listener_id int NOT NULL, pk jsonb NOT NULL, at timestamptz NOT NULL DEFAULT now());
CREATE TABLE public.log_text2 (listener_id int NOT NULL, pk text[] NOT NULL, at timestamptz NOT NULL DEFAULT now());
CREATE FUNCTION nolock_fn() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.log_json (listener_id, pk) VALUES (99, jsonb_build_array(NEW.id::text));
  RETURN NEW;
END $$;
CREATE TRIGGER "~t" BEFORE INSERT ON nolock_t FOR EACH ROW EXECUTE FUNCTION nolock_fn();
CREATE FUNCTION textpk_fn() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.log_text2 (listener_id, pk) VALUES (98, ARRAY[NEW.id::text]);
  IF NOT pg_catalog.pg_try_advisory_xact_lock_shared(1399157348, 1) THEN
    PERFORM pg_catalog.pg_notify('superduper', '98');
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER "~t" BEFORE INSERT ON textpk_t FOR EACH ROW EXECUTE FUNCTION textpk_fn();
SQL
D=$(mktemp -d)
for t in plain_t cur_t nolock_t textpk_t; do printf '\\set n random(1, 1000000)\nINSERT INTO %s (body) VALUES (%s);\n' $t "'document text number ' || :n" > $D/$t.sql; done
declare -A R
for i in 1 2 3 4 5; do
  for t in plain_t cur_t nolock_t textpk_t; do
    tps=$(/usr/lib/postgresql/15/bin/pgbench -n -c 4 -j 2 -T 4 -f $D/$t.sql "$U" 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | cut -d. -f1)
    R[$t]="${R[$t]} $tps"
  done
done
P=$(echo ${R[plain_t]} | tr ' ' '\n' | sort -n | sed -n 3p)
for t in plain_t cur_t nolock_t textpk_t; do
  med=$(echo ${R[$t]} | tr ' ' '\n' | sort -n | sed -n 3p)
  echo "$t: tps${R[$t]}; median $med; $(awk "BEGIN { printf \"%.3f\", $med / $P }")x plain"
done
psql "$URI" -qc "DROP DATABASE trig_exp"
