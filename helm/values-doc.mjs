// Writes the values table of helm/peertracker/README.md from values.yaml's `# --` comments (the
// helm-docs convention), between the README's values-table markers.
//   node helm/values-doc.mjs           rewrite the table
//   node helm/values-doc.mjs --check   exit 1 if the table is stale or a value is undocumented
// helm/chart.test.mjs runs the check in CI, with the schema's agreement with values.yaml.
import { readFileSync, writeFileSync } from 'node:fs';
import { isMap, parseDocument } from 'yaml';

const chart = new URL('./peertracker/', import.meta.url);
const BEGIN = '<!-- values-table: begin (node helm/values-doc.mjs) -->';
const END = '<!-- values-table: end -->';

/** The `# --` description in a comment, or undefined. */
function describe(comment) {
  if (!comment) return undefined;
  const at = comment.lastIndexOf('-- ');
  return at < 0 ? undefined : comment.slice(at + 3).replace(/\s*\n\s*/g, ' ').trim();
}

/**
 * Every documented value of values.yaml: [{ key, default, description }] in file order, and the
 * keys of leaves without a description. A documented map is one value (resources, behavior).
 */
export function documentedValues(text = readFileSync(new URL('values.yaml', chart), 'utf8')) {
  const rows = [];
  const undocumented = [];
  const walk = (map, prefix) => {
    map.items.forEach((pair, i) => {
      const key = prefix + String(pair.key.value);
      // (the first key's comment belongs to its map in the parse tree)
      const description = describe(pair.key.commentBefore) ?? (i === 0 ? describe(map.commentBefore) : undefined);
      if (description !== undefined) rows.push({ key, default: pair.value?.toJSON() ?? null, description });
      else if (isMap(pair.value)) walk(pair.value, `${key}.`);
      else undocumented.push(key);
    });
  };
  walk(parseDocument(text).contents, '');
  return { rows, undocumented };
}

const cell = (s) => s.replaceAll('|', '\\|').replaceAll('\n', ' ');

export function valuesTable(rows) {
  const lines = ['| key | default | description |', '|---|---|---|'];
  for (const r of rows) {
    const value = JSON.stringify(r.default);
    lines.push(`| \`${r.key}\` | \`${cell(value.length > 60 ? `${value.slice(0, 57)}...` : value)}\` | ${cell(r.description)} |`);
  }
  return lines.join('\n');
}

/** The README with its table made from values.yaml. */
export function renderReadme(readme, rows) {
  const from = readme.indexOf(BEGIN);
  const to = readme.indexOf(END);
  if (from < 0 || to < from) throw new Error(`the README lacks the markers ${BEGIN} … ${END}`);
  return `${readme.slice(0, from + BEGIN.length)}\n${valuesTable(rows)}\n${readme.slice(to)}`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { rows, undocumented } = documentedValues();
  if (undocumented.length > 0) {
    console.error(`values without a "# --" description in values.yaml: ${undocumented.join(', ')}`);
    process.exit(1);
  }
  const path = new URL('README.md', chart);
  const readme = readFileSync(path, 'utf8');
  const next = renderReadme(readme, rows);
  if (process.argv.includes('--check')) {
    if (next !== readme) {
      console.error('helm/peertracker/README.md: the values table is stale; run node helm/values-doc.mjs');
      process.exit(1);
    }
  } else if (next !== readme) writeFileSync(path, next);
}
