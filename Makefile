# superduper: the two commands a new user needs are
#   make demo    the whole product on an embedded database (nothing else to install)
#   make test    the test suite against a real PostgreSQL 15 + pgvector, which it
#                installs (pgvector from Debian's source package) and starts, with
#                the real clients it tests against (pgJDBC, psycopg2, from Debian)
# Everything else here is what those two depend on.

SHELL := /bin/bash
# onnxruntime-node bundles its CPU runtime; its postinstall would otherwise try
# (and, offline, fail) to download GPU libraries.
export ONNXRUNTIME_NODE_INSTALL := skip
NODE_MODULES_STAMP := node_modules/.installed-stamp
GENERATED := src/generated/sql.ts
SQL_SOURCES := $(shell find sql triggers -name '*.sql') scripts/build-sql-module.mjs package.json extension/config-dump.sql \
  scripts/extension-scripts.mjs sql/migrations/released.sha256 $(wildcard extension/released/*.sql)

.PHONY: all deps build sql pg pg-stop test bench demo extension typecheck clean ci

all: build

$(NODE_MODULES_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: $(NODE_MODULES_STAMP)

$(GENERATED): $(SQL_SOURCES)
	node scripts/build-sql-module.mjs

sql: $(GENERATED)

# The build, made again only when a source changed: "npm ci" builds it already
# (npm runs the package's prepare script), so a first "make demo" builds once
# and a second one not at all. node_modules is order-only: installing it again
# does not make the build stale.
DIST := dist/cli.js
TS_SOURCES := $(shell find src -name '*.ts' -not -path 'src/generated/*') tsup.config.ts tsconfig.json
$(DIST): $(TS_SOURCES) $(GENERATED) | $(NODE_MODULES_STAMP)
	npx tsup --silent
	@touch $@

# In a make of its own, started once node_modules is there: a fresh clone's
# "npm ci" builds dist/ (prepare) after this make has looked for it.
build: deps
	@$(MAKE) --no-print-directory $(DIST)

typecheck: deps sql
	npx tsc --noEmit -p .

pg:
	scripts/pg.sh start

pg-stop:
	scripts/pg.sh stop

test: build pg sql
	@# pgJDBC and psycopg2 (Debian's packages), for tests/conformance/clients.test.ts, and Chromium for tests/backends/postgres/ui.test.ts; the build, for the tests of the built CLI.
	scripts/test-clients.sh
	@# The extension files go into PostgreSQL's share directory when we may write
	@# there (root, as in CI); the CREATE EXTENSION test runs only then.
	@if [ -w "$$(/usr/lib/postgresql/15/bin/pg_config --sharedir)/extension" ]; then $(MAKE) -s -C extension install; fi
	npx tsc --noEmit -p .
	npx vitest run

# Benchmarks run the production build: dist/ (the CLI sidecar) and a bundle of
# bench/ with the sources it imports (no tsx in the measured code).
# ONLY="backfill streaming write-overhead memory search onnx-embedder api-models embedded endpoint reconnect wait-for mongodb documents metrics" picks some.
bench: build pg
	npx esbuild bench/run.ts --bundle --platform=node --format=esm --packages=external --outfile=bench/dist/run.mjs --log-level=warning
	npx esbuild bench/lib/sidecar-child.ts bench/lib/load-child.ts bench/lib/library-fit-child.ts bench/lib/graphile-child.ts --bundle --platform=node --format=esm --packages=external --outdir=bench/dist --out-extension:.js=.mjs --log-level=warning
	@# The MongoDB benchmark's server: the test emulation, in a process of its own.
	npx esbuild tests/helpers/mongodb-emulator/main.ts --bundle --platform=node --format=esm --packages=external --outfile=bench/dist/mongodb-emulator.mjs --log-level=warning
	node bench/dist/run.mjs

demo: build
	node bin/superduper.js demo

# Installs the extension files into the local PostgreSQL (needs write access to
# its share directory), for CREATE EXTENSION superduper.
extension: sql
	$(MAKE) -C extension install

clean:
	rm -rf dist src/generated extension/superduper--*.sql extension/superduper-functions.sql extension/superduper.control
