/**
 * The CLI's plan before apply: `superduper plan`, `apply --dry-run`, and an
 * apply that removes or rebuilds outputs refused without --yes when nobody is
 * at a terminal to say yes; template variables from --var.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';

let database: TestDatabase;
const dir = mkdtempSync(join(tmpdir(), 'superduper-plan-'));
const q = (sql: string) => database.sql.query(sql).then((r) => r.rows);

/** Runs the CLI (stdin not a terminal, as in a script); its exit code and output. */
const cli = (...args: string[]) => {
  try {
    const stdout = execFileSync(process.execPath, ['--import', 'tsx', 'tests/helpers/cli.ts', ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SUPERDUPER_URI: '' },
    });
    return { code: 0, stdout, stderr: '' };
  } catch (error) {
    const e = error as { status: number; stdout: string; stderr: string };
    return { code: e.status, stdout: e.stdout, stderr: e.stderr };
  }
};

const template = (withIndex: boolean) => ({
  type: 'application',
  name: '{{name}}',
  variables: { name: { type: 'text' }, table: { type: 'table' } },
  components: [
    { type: 'listener', name: '{{name}}_embedding', model: 'default-embedder', table: '{{table}}', keys: ['body'] },
    ...(withIndex ? [{ type: 'vector_index', name: '{{name}}_index', listener: '{{name}}_embedding' }] : []),
  ],
});
const file = (name: string, spec: unknown) => {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(spec));
  return path;
};
const registry = async () => ({
  listeners: (await q(`SELECT name FROM superduper._listeners ORDER BY name`)).map((r) => r.name),
  indexes: (await q(`SELECT name FROM superduper._vector_indexes ORDER BY name`)).map((r) => r.name),
});

beforeAll(async () => {
  database = await createTestDatabase('plan_cli');
  await q(`CREATE TABLE docs (id int PRIMARY KEY, body text); INSERT INTO docs VALUES (1, 'hello'), (2, 'moon'), (3, 'sun')`);
}, 60_000);

afterAll(async () => {
  await database?.drop();
});

describe('plan before apply, from the command line', () => {
  it('plans, then applies, a template with its variables from --var', async () => {
    const full = file('full.json', template(true));
    const plan = cli('plan', full, database.uri, '--var', 'name=search', '--var', 'table=docs');
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toContain('application search: created');
    expect(plan.stdout).toContain('  listener search_embedding: created (version 1), 3 existing row(s) to compute');
    expect(plan.stdout).toContain('  vector_index search_index: created');
    const json = JSON.parse(cli('plan', full, database.uri, '--json', '--var', 'name=search', '--var', 'table=docs').stdout);
    expect(json[0]).toMatchObject({ type: 'application', name: 'search', destructive: false });
    expect(await registry()).toEqual({ listeners: [], indexes: [] });

    const applied = cli('apply', full, database.uri, '--no-wait', '--var', 'name=search', '--var', 'table=docs');
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toContain('application search: created');
    expect(await registry()).toEqual({ listeners: ['search_embedding'], indexes: ['search_index'] });
  });

  it('refuses, without --yes, an apply that removes outputs, and applies it with --yes', async () => {
    const smaller = file('smaller.json', template(false));
    const vars = ['--var', 'name=search', '--var', 'table=docs'];
    const refused = cli('apply', smaller, database.uri, '--no-wait', ...vars);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toContain('  vector_index search_index: removed');
    expect(refused.stderr).toContain('error: not applied: vector_index search_index (removed) would be removed or rebuilt');
    expect(refused.stderr).toContain('hint: Pass --yes');
    expect(await registry()).toEqual({ listeners: ['search_embedding'], indexes: ['search_index'] });

    const dry = cli('apply', smaller, database.uri, '--dry-run', ...vars);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('vector_index search_index: removed');
    expect(await registry()).toEqual({ listeners: ['search_embedding'], indexes: ['search_index'] });

    const yes = cli('apply', smaller, database.uri, '--no-wait', '--yes', ...vars);
    expect(yes.code, yes.stderr).toBe(0);
    expect(yes.stdout).toContain('vector_index search_index: removed');
    expect(await registry()).toEqual({ listeners: ['search_embedding'], indexes: [] });
  });

  it('applies without asking a vector index rebuilt beside the current one, which loses nothing', async () => {
    const measured = (measure: string) => ({
      type: 'application',
      name: 'measured',
      components: [
        { type: 'listener', name: 'measured_embedding', model: 'default-embedder', table: 'docs', keys: ['body'] },
        { type: 'vector_index', name: 'measured_index', listener: 'measured_embedding', measure },
      ],
    });
    expect(cli('apply', file('cosine.json', measured('cosine')), database.uri, '--no-wait').code).toBe(0);
    const l2 = file('l2.json', measured('l2'));
    const plan = cli('plan', l2, database.uri);
    expect(plan.stdout).toContain(
      '  vector_index measured_index: rebuilding (version 2); a sidecar builds its new graph beside the current one, which answers searches until then',
    );
    const applied = cli('apply', l2, database.uri, '--no-wait');
    expect(applied.code, applied.stderr).toBe(0);
    expect(await q(`SELECT version, state, measure FROM superduper.vector_indexes WHERE name = 'measured_index' ORDER BY version`)).toEqual([
      { version: 1, state: 'current', measure: 'cosine' },
      { version: 2, state: 'building', measure: 'l2' },
    ]);
    expect(cli('remove', 'measured', database.uri).code).toBe(0);
  });

  it('asks at a terminal before an apply that removes outputs, and does what the answer says', async () => {
    const vars = ['--var', 'name=search', '--var', 'table=docs'];
    expect(cli('apply', file('full2.json', template(true)), database.uri, '--no-wait', ...vars).code).toBe(0);
    const smaller = file('smaller2.json', template(false));
    // util-linux's script gives the CLI a terminal; the answer is typed into it.
    const atTerminal = (answer: string) => {
      const command = [process.execPath, '--import', 'tsx', 'tests/helpers/cli.ts', 'apply', smaller, database.uri, '--no-wait', ...vars].join(' ');
      try {
        return { code: 0, out: execFileSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', input: `${answer}\n`, env: { ...process.env, SUPERDUPER_URI: '' } }) };
      } catch (error) {
        const e = error as { status: number; stdout: string };
        return { code: e.status, out: e.stdout };
      }
    };
    const no = atTerminal('n');
    expect(no.out).toContain('this removes or replaces outputs: vector_index search_index (removed). Apply? [y/N]');
    expect(no.code).toBe(1);
    expect(await registry()).toEqual({ listeners: ['search_embedding'], indexes: ['search_index'] });
    const yes = atTerminal('y');
    expect(yes.code, yes.out).toBe(0);
    expect(yes.out).toContain('vector_index search_index: removed');
    expect(await registry()).toEqual({ listeners: ['search_embedding'], indexes: [] });
  });

  it('exports an application as a package, and plans and applies the package', async () => {
    const zip = join(dir, 'search.zip');
    const exported = cli('export', 'search', zip, database.uri);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toContain(`application search: exported to ${zip} (0 file(s), 0 bytes)`);
    expect(cli('export', 'search', zip, database.uri).stderr).toContain(`cannot write ${zip}`);
    expect(cli('export', 'nothing', join(dir, 'n.zip'), database.uri).stderr).toContain('no application named "nothing"');
    const plan = cli('plan', zip, database.uri, '--var', 'name=copy', '--var', 'table=docs');
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toContain('application copy: created');
    const applied = cli('apply', zip, database.uri, '--no-wait', '--var', 'name=copy', '--var', 'table=docs');
    expect(applied.code, applied.stderr).toBe(0);
    expect((await registry()).listeners).toEqual(['copy_embedding', 'search_embedding']);
  });

  it('prints into a pipe closed early (| head) without a stack trace', async () => {
    // true reads nothing and exits at once: every write the CLI makes finds the pipe closed.
    const piped = execFileSync('bash', ['-c', `${process.execPath} --import tsx tests/helpers/cli.ts templates 2>&1 | true; echo "status \${PIPESTATUS[0]}"`], {
      encoding: 'utf8',
    });
    expect(piped).toBe('status 0\n');
    const head = execFileSync('bash', ['-c', `${process.execPath} --import tsx tests/helpers/cli.ts templates | head -1`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(head).toMatch(/^image-search: /);
  });

  it('says what is wrong with a --var', async () => {
    const plain = file('plain.json', { type: 'listener', name: 'x', model: 'default-embedder', table: 'docs', keys: ['body'] });
    expect(cli('plan', plain, database.uri, '--var', 'table=docs').stderr).toContain('declares no variables, so --var has nothing to set');
    expect(cli('plan', file('t.json', template(true)), database.uri, '--var', 'table').stderr).toContain('--var table: expected name=value');
    expect(cli('plan', 'semantic-serach', database.uri).stderr).toContain('semantic-serach: no such file or folder, and no template of the gallery has that name');
    const gallery = cli('plan', 'semantic-search', database.uri, '--var', 'table=docs');
    expect(gallery.code, gallery.stderr).toBe(0);
    expect(gallery.stdout).toContain('application semantic_search: created');
    const missing = cli('plan', file('t2.json', template(true)), database.uri, '--var', 'table=docs');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('variable "name" has no value and no default');
    expect(missing.stderr).toContain('--var name=...');
  });
});
