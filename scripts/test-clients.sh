#!/usr/bin/env bash
# Installs the real PostgreSQL clients the embedded endpoint is tested with, from
# Debian's packages: pgJDBC (libpostgresql-jdbc-java, run with the machine's
# Java) and psycopg2 (python3-psycopg2, for Debian's /usr/bin/python3), and the
# browser the status page is tested in (chromium). psql and pgbench come with
# postgresql-15. Idempotent; needs root (or sudo) the first time.
set -euo pipefail

JDBC_JAR=/usr/share/java/postgresql.jar
have_jdbc() { [ -f "$JDBC_JAR" ]; }
have_psycopg2() { /usr/bin/python3 -c 'import psycopg2' >/dev/null 2>&1; }
have_java() { command -v java >/dev/null 2>&1; }
# The status page's tests drive Debian's Chromium with playwright-core.
have_chromium() { [ -x /usr/bin/chromium ]; }

if have_jdbc && have_psycopg2 && have_java && have_chromium; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "test clients: pgJDBC, psycopg2, Java or Chromium is missing; run 'sudo scripts/test-clients.sh' once." >&2
  exit 1
fi
echo "test clients: installing libpostgresql-jdbc-java, python3-psycopg2 and chromium from Debian" >&2
packages=(libpostgresql-jdbc-java python3-psycopg2)
have_java || packages+=(default-jre-headless)
have_chromium || packages+=(chromium)
install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null; }
install || { apt-get update -qq && install; }
have_jdbc && have_psycopg2 && have_java && have_chromium || { echo "test clients: installed, but pgJDBC, psycopg2 or Chromium is still missing" >&2; exit 1; }
