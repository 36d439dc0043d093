import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

// Reference: npm's engines ranges as written in package-lock.json, evaluated by the rules of
// node-semver for the forms they use (>=, >, ^, ~, x-ranges, ||, space-joined comparators).

type V = [number, number, number];

function parse(v: string): V {
  const [a = 0, b = 0, c = 0] = v
    .replace(/^v/, '')
    .split('.')
    .map((x) => (x === 'x' || x === '*' ? 0 : Number(x)));
  return [a, b, c];
}
const cmp = (a: V, b: V): number => a[0] - b[0] || a[1] - b[1] || a[2] - b[2];

function satisfiesComparator(v: V, c: string): boolean {
  const m = /^(>=|<=|>|<|\^|~|=)?\s*(.+)$/.exec(c.trim());
  if (!m) throw new Error(`cannot read '${c}'`);
  const [, op = '', raw] = m;
  if (raw === '*' || raw === 'x') return true;
  const parts = raw.split('.').length;
  const w = parse(raw);
  switch (op) {
    case '>=':
      return cmp(v, w) >= 0;
    case '>':
      return cmp(v, w) > 0;
    case '<':
      return cmp(v, w) < 0;
    case '<=':
      return cmp(v, w) <= 0;
    case '^':
      return cmp(v, w) >= 0 && (w[0] > 0 ? v[0] === w[0] : v[0] === 0 && v[1] === w[1]);
    case '~':
      return cmp(v, w) >= 0 && v[0] === w[0] && (parts < 2 || v[1] === w[1]);
    default: // an exact version or an x-range such as "20"
      return parts === 1
        ? v[0] === w[0]
        : parts === 2
          ? v[0] === w[0] && v[1] === w[1]
          : cmp(v, w) === 0;
  }
}

export function satisfies(version: string, range: string): boolean {
  const v = parse(version);
  return range.split('||').some((set) =>
    set
      .trim()
      .replace(/(>=|<=|>|<|\^|~)\s+/g, '$1')
      .split(/\s+/)
      .every((c) => satisfiesComparator(v, c)),
  );
}

test('the range reader agrees with node-semver on the forms the lock file uses', () => {
  assert.ok(satisfies('20.19.0', '^20.19.0 || ^22.12.0 || >=23'));
  assert.ok(!satisfies('20.10.0', '^20.19.0 || ^22.12.0 || >=23'));
  assert.ok(!satisfies('20.19.0', '>=22'));
  assert.ok(satisfies('20.19.0', '>= 10'));
  assert.ok(satisfies('20.19.0', '20 || >=22'));
  assert.ok(!satisfies('21.0.0', '20 || >=22'));
  assert.ok(satisfies('20.19.0', '^18.18.0 || ^20.9.0 || >=21.1.0'));
});

test('every installed package accepts the oldest Node lmdyn declares (package.json engines)', () => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { engines: { node: string } };
  const min = /^>=\s*(\d+\.\d+(\.\d+)?)$/.exec(pkg.engines.node)?.[1];
  assert.ok(min, `engines.node should be ">=X.Y", is ${pkg.engines.node}`);
  const lock = JSON.parse(readFileSync('package-lock.json', 'utf8')) as {
    packages: Record<
      string,
      { engines?: { node?: string } | string[]; dev?: boolean; optional?: boolean }
    >;
  };
  const bad: string[] = [];
  for (const [name, p] of Object.entries(lock.packages)) {
    const range = Array.isArray(p.engines) ? undefined : p.engines?.node;
    if (name === '' || !range) continue;
    if (!satisfies(min, range)) bad.push(`${name}${p.dev ? ' (dev)' : ''}: node ${range}`);
  }
  assert.deepEqual(bad, []);
});

test('the unused tsx is gone and resvg (only --png) is optional', () => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as Record<
    string,
    Record<string, string>
  >;
  assert.equal(pkg.devDependencies.tsx, undefined);
  assert.equal(pkg.dependencies['@resvg/resvg-js'], undefined);
  assert.ok(pkg.optionalDependencies['@resvg/resvg-js']);
});
