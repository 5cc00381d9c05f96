/**
 * Every TypeScript snippet in the README and in docs/ type-checks against the library's own
 * declarations, each as a module of its own, with the values the prose assumes (a device, input
 * arrays, buffers) declared where a snippet uses them. A renamed export, option or argument, or a
 * snippet a user could not compile as written, breaks this test.
 *
 * The documentation's structure is checked too: the README's prerequisites, the two commands,
 * then the contents, and at most 350 lines; every link between README.md, docs/*.md and
 * bench/README.md resolving to a file, and an anchor to a heading; every docs page linked from
 * the README; no issue numbers; every test file named in docs/tests.md and every library file
 * (the .ts files under src/, the .wgsl files under shaders/) in docs/how-it-works.md, under the
 * heading of its folder, and no file that is not there; the big benchmark table in
 * bench/README.md; the test count quoted once, under the README's Tests (and equal to the count
 * of a complete run's .ci/test-results.json when one is there); the note that Node has WebGPU's
 * globals only after getDevice() where the README first names one.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';

const repo = resolve(import.meta.dirname, '../..');

/** What the snippets take as given: declared in a snippet's module where it uses the name without defining it. */
const GIVEN: Record<string, string> = {
  device: 'GPUDevice',
  encoder: 'GPUCommandEncoder',
  x: 'Float32Array',
  dy: 'Float32Array',
  xTest: 'Float32Array',
  people: 'Float32Array',
  n: 'number',
  C: 'number',
  F: 'number',
  shape: 'number[]',
  chunks: 'Float32Array[]',
  gamma: 'Float32Array',
  beta: 'Float32Array',
  runningMean: 'Float64Array',
  runningVar: 'Float64Array',
  convWeight: 'Float32Array',
  convBias: 'Float32Array',
  stateDict: 'Record<string, Float32Array>',
  weights: 'Float32Array[]',
  bn: "import('webgpu-batchnorm').BatchNorm",
};
for (const name of ['xBuffer', 'yBuffer', 'dyBuffer', 'dxBuffer', 'params', 'grads', 'gammaBuffer', 'betaBuffer', 'meanBuffer', 'varBuffer', 'countBuffer', 'gammaGrad', 'betaGrad', 'rows', 'scaled', 'restored']) {
  GIVEN[name] = 'GPUBuffer';
}

/** Names a snippet declares itself (const/let, including destructuring). */
function declared(code: string): Set<string> {
  const names = new Set<string>();
  for (const m of code.matchAll(/\b(?:const|let)\s+(\{[^}]*\}|\[[^\]]*\]|[A-Za-z_$][\w$]*)/g)) {
    for (const n of m[1].replace(/[{}[\]]/g, ' ').split(/[\s,]+/)) {
      const name = n.split(':').pop()!.trim();
      if (name) names.add(name);
    }
  }
  for (const m of code.matchAll(/\bimport\s*\{([^}]*)\}/g)) for (const n of m[1].split(',')) names.add(n.trim().split(/\s+as\s+/).pop()!);
  return names;
}

function prelude(code: string): string {
  const own = declared(code);
  return Object.entries(GIVEN)
    .filter(([name]) => !own.has(name) && new RegExp(`(?<![\\w$.'])${name}(?![\\w$])`).test(code))
    .map(([name, type]) => `declare const ${name}: ${type};\n`)
    .join('');
}


/** Markdown lines with whether each is inside a fenced code block (the fences count as inside). */
function fenced(md: string): { text: string; code: boolean }[] {
  let inside = false;
  return md.split('\n').map((text) => {
    if (/^\s*```/.test(text)) {
      inside = !inside;
      return { text, code: true };
    }
    return { text, code: inside };
  });
}

/** The fenced code blocks: first and last line index (the fences) and the body. */
function codeBlocks(md: string): { start: number; end: number; body: string }[] {
  const lines = md.split('\n');
  const blocks: { start: number; end: number; body: string }[] = [];
  let start = -1;
  lines.forEach((line, i) => {
    if (!/^\s*```/.test(line)) return;
    if (start < 0) start = i;
    else {
      blocks.push({ start, end: i, body: lines.slice(start + 1, i).join('\n') });
      start = -1;
    }
  });
  return blocks;
}

/** Headings outside code blocks: level, title and line index. */
function headings(md: string): { level: number; title: string; line: number }[] {
  return fenced(md).flatMap(({ text, code }, line) => {
    const m = !code && /^(#{1,6}) (.+)$/.exec(text);
    return m ? [{ level: m[1].length, title: m[2].trim(), line }] : [];
  });
}

/** A `## title` section's text, up to the next heading of level 2 or above. */
function section(md: string, title: string): string {
  const all = headings(md);
  const i = all.findIndex((h) => h.level === 2 && h.title === title);
  if (i < 0) throw new Error(`no "## ${title}" section`);
  const next = all.slice(i + 1).find((h) => h.level <= 2);
  return md.split('\n').slice(all[i].line + 1, next?.line).join('\n');
}

/** GitHub's anchor for a heading. */
function slug(title: string): string {
  return title.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}

/** Markdown tables (runs of lines starting with `|`), as their body rows (header and separator left out). */
function tableRows(md: string): string[][] {
  const tables: string[][] = [];
  let run: string[] = [];
  for (const { text, code } of [...fenced(md), { text: '', code: false }]) {
    if (!code && text.trimStart().startsWith('|')) run.push(text);
    else {
      if (run.length) tables.push(run.slice(2));
      run = [];
    }
  }
  return tables;
}

/** Files under `dir` (relative to it, with `/`) whose names end with one of `ends`. */
function walk(dir: string, ends: string[]): string[] {
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as import('node:fs').Dirent[])
    .filter((e) => e.isFile() && ends.some((end) => e.name.endsWith(end)))
    .map((e) => relative(dir, join(e.parentPath ?? (e as unknown as { path: string }).path, e.name)).split(sep).join('/'))
    .sort();
}

/**
 * The text under each heading that names `folder` in backticks (e.g. "### `test/gpu/core/`"), up
 * to the next heading of the same or a higher level.
 */
function folderSections(md: string, folder: string): string {
  const all = headings(md);
  const lines = md.split('\n');
  return all
    .map((h, i) => ({ h, i }))
    .filter(({ h }) => h.title.includes(`\`${folder}\``))
    .map(({ h, i }) => {
      const next = all.slice(i + 1).find((n) => n.level <= h.level);
      return lines.slice(h.line + 1, next?.line).join('\n');
    })
    .join('\n');
}

const read = (file: string) => readFileSync(join(repo, file), 'utf8');
const readme = read('README.md');
const benchReadme = read('bench/README.md');
/** The pages of docs/ (the generated API reference in docs/api/ is not one). */
const docPages = walk(join(repo, 'docs'), ['.md']).filter((f) => !f.startsWith('api/')).map((f) => `docs/${f}`);
/** Every Markdown page whose links are checked: README.md, docs/*.md and bench/README.md. */
const pages = ['README.md', ...docPages, 'bench/README.md'];

describe('README and docs/', () => {
  it('every TypeScript snippet type-checks against the library', () => {
    const snippetsOf = (md: string) => [...md.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
    expect(snippetsOf(readme).length, 'snippets in README.md').toBeGreaterThanOrEqual(5);
    const snippets = ['README.md', ...docPages].flatMap((page) => snippetsOf(read(page)).map((code, i) => ({ name: `${page.replace(/[/.]/g, '_')}_snippet${i}`, code })));
    expect(snippets.length).toBeGreaterThanOrEqual(20);
    const dir = mkdtempSync(join(tmpdir(), 'webgpu-batchnorm-readme-'));
    try {
      const files = snippets.map(({ name, code }) => {
        const file = join(dir, `${name}.ts`);
        writeFileSync(file, `${prelude(code)}${code}\nexport {};\n`);
        return file;
      });
      writeFileSync(
        join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            strict: true,
            noEmit: true,
            target: 'ES2022',
            module: 'ESNext',
            moduleResolution: 'Bundler',
            lib: ['ES2022', 'DOM'],
            types: ['@webgpu/types', 'vite/client', 'node'],
            typeRoots: [join(repo, 'node_modules', '@types'), join(repo, 'node_modules')],
            baseUrl: repo,
            paths: {
              'webgpu-batchnorm': [join(repo, 'src', 'index.ts')],
              'webgpu-batchnorm/tfjs': [join(repo, 'src', 'tfjs', 'index.ts')],
              '@tensorflow/*': [join(repo, 'node_modules', '@tensorflow', '*')],
            },
            skipLibCheck: true,
          },
          files,
        }),
      );
      let output = '';
      try {
        execFileSync('node', [join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      } catch (e) {
        output = (e as { stdout?: string }).stdout ?? String(e);
      }
      // Errors in the library's own files would be caught by the typecheck; only the snippets count here.
      const snippetErrors = output.split('\n').filter((line) => line.includes('_snippet'));
      expect(snippetErrors).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('opens with the prerequisites, then the two commands, then the contents', () => {
    const lines = readme.split('\n');
    const firstSection = headings(readme).find((h) => h.level === 2);
    expect(firstSection?.title, 'the first "## " heading').toBe('Contents');
    const [prerequisites, commands] = codeBlocks(readme);
    expect(commands.end, 'both code blocks come before the first "## " heading').toBeLessThan(firstSection!.line);

    // The prerequisites: the Node version of package.json's engines, and the apt-get line.
    const intro = lines.slice(0, prerequisites.start).join('\n');
    expect(intro).toMatch(/Prerequisites/);
    const engines = JSON.parse(read('package.json')).engines.node as string;
    const version = /(\d+(?:\.\d+)*)/.exec(engines)![1];
    expect(intro).toContain(`Node ${version}`);
    expect(prerequisites.body).toMatch(/\bapt-get install\b.*\bchromium libvulkan1\b/);

    // Exactly the two commands, each with at most a one-line note beside it.
    const commandLines = commands.body.split('\n').filter((l) => l.trim());
    expect(commandLines.map((l) => l.replace(/\s+#.*$/, '').trim())).toEqual(['npm install && npm run demo:headless', 'npm test']);

    // Little prose around them: one line introducing the commands, none between them and the contents.
    const prose = (from: number, to: number) => lines.slice(from, to).filter((l) => l.trim());
    expect(prose(prerequisites.end + 1, commands.start).length, 'lines between the apt-get block and the commands').toBeLessThanOrEqual(2);
    expect(prose(commands.end + 1, firstSection!.line), 'lines between the commands and the contents').toEqual([]);
  });

  it('keeps the README short: at most 350 lines, the rest in docs/', () => {
    expect(readme.replace(/\n$/, '').split('\n').length).toBeLessThanOrEqual(350);
  });

  it('lists every README section in its contents', () => {
    const contents = section(readme, 'Contents');
    expect(contents.split('\n').filter((l) => l.trim())[0]).toMatch(/^- \[/);
    for (const h of headings(readme).filter((h) => h.level === 2 && h.title !== 'Contents')) {
      expect(contents, `the contents link "## ${h.title}"`).toContain(`](#${slug(h.title)})`);
    }
  });

  it('links every docs page from the README, and every link between the pages resolves', () => {
    for (const page of docPages) expect(readme, `README.md links ${page}`).toContain(`](${page}`);
    const anchors = new Map(pages.map((page) => [page, new Set(headings(read(page)).map((h) => slug(h.title)))]));
    const broken: string[] = [];
    for (const page of pages) {
      const prose = fenced(read(page)).filter((l) => !l.code).map((l) => l.text).join('\n').replace(/`[^`\n]*`/g, '');
      for (const [, target] of prose.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/i.test(target)) continue; // https:, mailto:
        const [path, anchor] = target.split('#');
        const file = path ? relative(repo, resolve(repo, dirname(page), path)).split(sep).join('/') : page;
        if (!existsSync(join(repo, file))) broken.push(`${page}: ${target} (no file ${file})`);
        else if (anchor !== undefined && !anchors.get(file)?.has(anchor)) broken.push(`${page}: ${target} (no heading #${anchor} in ${file})`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('quotes no issue numbers', () => {
    for (const page of pages) {
      const hits = read(page).split('\n').filter((l) => /\bissues?\s*#?\s*\d+/i.test(l));
      expect(hits, page).toEqual([]);
    }
  });

  it('names every test file in docs/tests.md, under its folder', () => {
    const tests = read('docs/tests.md');
    const files = walk(join(repo, 'test'), ['.test.ts']).map((f) => `test/${f}`);
    expect(files.length).toBeGreaterThan(20);
    const missing = files.filter((file) => {
      if (tests.includes(`\`${file}\``)) return false;
      // A folder's files are named by their stem, leading a list item under the folder's heading.
      const folder = file.slice(0, file.lastIndexOf('/') + 1);
      const stem = file.slice(folder.length).replace(/\.test\.ts$/, '');
      return !folderSections(tests, folder).split('\n').some((l) => l.startsWith(`- \`${stem}\``));
    });
    expect(missing).toEqual([]);
  });

  it('names every library file in docs/how-it-works.md, under its folder', () => {
    const how = read('docs/how-it-works.md');
    const files = [...walk(join(repo, 'src'), ['.ts']).map((f) => `src/${f}`), ...walk(join(repo, 'shaders'), ['.wgsl']).map((f) => `shaders/${f}`)];
    expect(files.length).toBeGreaterThan(40);
    const missing = files.filter((file) => {
      if (how.includes(`\`${file}\``)) return false;
      // A folder's files are named by their file name under the folder's heading.
      const folder = file.slice(0, file.lastIndexOf('/') + 1);
      return !folderSections(how, folder).includes(`\`${file.slice(folder.length)}\``);
    });
    expect(missing).toEqual([]);
  });

  it('names no source, shader or test file that is not there', () => {
    const gone = ['README.md', ...docPages].flatMap((page) =>
      [...read(page).matchAll(/`((?:src|shaders|test)\/[\w./-]+\.(?:ts|wgsl|json))`/g)].filter((m) => !existsSync(join(repo, m[1]))).map((m) => `${page}: ${m[1]}`),
    );
    expect(gone).toEqual([]);
  });

  it('keeps the big benchmark table in bench/README.md', () => {
    const ours = tableRows(section(readme, 'Benchmark'));
    expect(Math.max(0, ...ours.map((t) => t.length)), 'rows of the largest table in README.md\'s Benchmark section').toBeLessThanOrEqual(20);
    const title = headings(benchReadme).find((h) => h.level === 2 && h.title.startsWith('Browser benchmark on SwiftShader'));
    expect(title, 'bench/README.md: "## Browser benchmark on SwiftShader"').toBeDefined();
    const theirs = tableRows(section(benchReadme, title!.title));
    const big = theirs.find((t) => t.length > 20);
    expect(big, 'a table of more than 20 rows in bench/README.md\'s browser benchmark').toBeDefined();
    expect(big!.join('\n')).toContain('TF.js WebGPU');
    expect(readme).toContain('](bench/README.md#browser-benchmark-on-swiftshader');
  });

  it('quotes the test count and time once, under Tests, as .ci/run prints it', () => {
    const flat = readme.replace(/\s+/g, ' ');
    const quotes = [...flat.matchAll(/Tests: (\d+) passed, (\d+) failed, (\d+) skipped/g)];
    expect(quotes.length, 'quotes of `Tests: N passed, N failed, N skipped`').toBe(1);
    const tests = section(readme, 'Tests').replace(/\s+/g, ' ');
    expect(tests).toContain(quotes[0][0]);
    // No other count or time of the suite anywhere, the first screen and docs/ included.
    const counts = flat.match(/\b\d[\d,]* (?:tests|passed)\b/gi) ?? [];
    expect(counts, 'counts of tests').toEqual([`${quotes[0][1]} passed`]);
    expect(flat.match(/\d[\d,]* s of test time/g), 'times of the suite').toHaveLength(1);
    expect(tests).toMatch(/\d[\d,]* s of test time/);
    const firstScreen = readme.slice(0, readme.indexOf('\n## '));
    expect(firstScreen).not.toMatch(/\d+ (?:tests|passed)|test time/);
    for (const page of docPages) expect(read(page), page).not.toMatch(/Tests: \d+ passed|\d[\d,]* s of test time/);

    // A complete run's results (.ci/run writes them; absent on a clean clone and while it runs):
    // the README quotes that run.
    const file = join(repo, '.ci', 'test-results.json');
    if (!existsSync(file)) return;
    const results = JSON.parse(readFileSync(file, 'utf8')) as {
      numPassedTests: number;
      numFailedTests: number;
      numPendingTests: number;
      numTodoTests: number;
      testResults: { name: string }[];
    };
    const ran = new Set(results.testResults.map((r) => relative(join(repo, 'test'), r.name).split(sep).join('/')));
    const complete = walk(join(repo, 'test'), ['.test.ts']).every((f) => ran.has(f));
    if (!complete || results.numFailedTests > 0) return;
    const skipped = results.numPendingTests + results.numTodoTests;
    expect(
      quotes[0][0],
      'the Tests section quotes the last complete run of .ci/test-results.json: update its count, date and time from that run',
    ).toBe(`Tests: ${results.numPassedTests} passed, ${results.numFailedTests} failed, ${skipped} skipped`);
  });

  it("says that Node has WebGPU's globals only after getDevice() where it first names one", () => {
    const paragraphs = readme.split(/\n\s*\n/);
    const first = paragraphs.find((p) => /\bGPU(?:BufferUsage|MapMode)\b/.test(p));
    expect(first, 'a paragraph naming GPUBufferUsage or GPUMapMode').toBeDefined();
    const flat = first!.replace(/\s+/g, ' ');
    expect(flat).toMatch(/In Node, `GPUBufferUsage`, `GPUMapMode` and [^.]* globals only once `getDevice\(\)` has run/);
  });
});
