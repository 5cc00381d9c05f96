/**
 * bench:node's command line: the options, their parsing (the --cases syntax of BatchNorm and
 * family cases, the --modes aliases) and the --help text.
 */
import { channelAxis, checkLayout, channelView, type Layout } from '../../src/core/layout.js';
import {
  CASES,
  FAMILY_CASES,
  FAMILY_NORMS,
  FAMILY_QUICK_CASES,
  LARGE_CASES,
  MODES,
  NODE_CASES,
  NODE_QUICK_CASES,
  TFJS_CASES,
  TFJS_QUICK_CASES,
  type BenchCase,
  type Mode,
  type TfjsSelection,
} from '../cases.js';
import { rowLayout } from '../family.js';
import { caseName } from './rows.js';

/** Every case bench:node knows: BatchNorm's ten, then the family's seven. */
export const ALL_NODE_CASES: BenchCase[] = [...NODE_CASES, ...FAMILY_CASES];

export const USAGE = `npm run bench:node -- [options]

  --quick              the quick cases (${NODE_QUICK_CASES.map((c) => caseName(c)).join(', ')}) and tfjs-quick
  --cases LIST         comma-separated: LAYOUT:DIMS (a BatchNorm case, e.g. NCHW:8x32x32x32, NC:4096x1024),
                       LayerNorm:DIMS, RMSNorm:DIMS (normalizedShape = the last dimension, e.g.
                       LayerNorm:8192x4096), GroupNorm/G:LAYOUT:DIMS (e.g. GroupNorm/32:NHWC:16x64x64x256),
                       InstanceNorm:LAYOUT:DIMS, or a set: default (the browser bench's 7), large (3 of
                       several hundred MB), batchnorm (the 10 BatchNorm cases), family (the family's 7),
                       family-quick (their 5 small twins), tfjs (TF.js layers, plain against
                       registerTfjsKernels: ${TFJS_CASES.length} cases), tfjs-quick (${TFJS_QUICK_CASES.length} small ones), quick (with
                       tfjs-quick), all (17, with tfjs); default: all (quick with --quick). TF.js rows need
                       @tensorflow/tfjs: skipped without it, unless tfjs or tfjs-quick is named
  --modes LIST         comma-separated: inference, training, backward (= forward+backward), forward
                       (= training); default: all 3. Family cases run forward when inference or training
                       is selected, and backward (alone) when backward is
  --samples N          samples per implementation, median reported (>= 7; default 7)
  --min-sample-ms MS   GPU work per sample; K repetitions per sample are chosen to reach it (default 4)
  --warmup-ms MS       warm-up per case and mode, implementations interleaved (default 300)
  --tolerance T        largest |output - float64 reference| accepted (default 1e-4); TF.js rows:
                       largest max |adapter - plain TF.js| / max |plain TF.js| of an output
  --peer pytorch       also run torch.nn.functional.batch_norm (bench/pytorch_peer.py) when python3
                       has torch with CUDA: eager and CUDA-graph replay, plus PyTorch's copy
  --torch-compile      with --peer pytorch, also torch.compile (slow to compile: best with few --cases)
  --resample N         times a row is re-sampled at most when its copy ran below 80 % of the fastest copy
                       of at most its bytes (a slower clock state): default 2 on a GPU, 0 on a CPU
                       adapter such as SwiftShader (no clocks; its copies vary with the CPU's load)
  --check-only         check every output against the reference and time nothing (large cases on a
                       slow adapter such as SwiftShader); no PyTorch peer
  --python PATH        the Python to run the peer with (default python3)
  --compare FILE       a results JSON of another run (another commit): adds a "vs" column
  --out FILE           results JSON path (default: $OUT/results-node-<adapter>.json when OUT is set,
                       else bench/results-node-<adapter>.json); the table goes beside it as .md

Exits 1 if any output of webgpu-batchnorm, the baseline or a copy is off the reference, if a TF.js
row's adapter disagrees with plain TF.js or leaks tensors (or a GPU error occurred); timings are
never asserted.`;

/** Command-line options. */
export interface Options {
  cases: BenchCase[];
  /** The TF.js rows (cases-tfjs.ts), or null. */
  tfjs: TfjsSelection | null;
  modes: Mode[];
  quick: boolean;
  samples: number;
  minSampleMs: number;
  warmupMs: number;
  tolerance: number;
  peer: 'pytorch' | null;
  torchCompile: boolean;
  /** Re-samples at most of a row whose copy ran slow (clock-check.ts); null: 2 on a GPU, 0 on a CPU adapter. */
  resample: number | null;
  /** Check every output, time nothing. */
  checkOnly: boolean;
  python: string;
  compare: string | null;
  out: string | null;
  help: boolean;
}

const MODE_ALIASES: Record<string, Mode> = {
  inference: 'inference',
  training: 'training forward',
  'training-forward': 'training forward',
  'training forward': 'training forward',
  backward: 'forward+backward',
  'forward+backward': 'forward+backward',
  'fwd+bwd': 'forward+backward',
  forward: 'training forward',
};

/** Parses a family case: LayerNorm:DIMS, RMSNorm:DIMS, GroupNorm[/G]:LAYOUT:DIMS, InstanceNorm:LAYOUT:DIMS (also with [d,d,...]). */
function parseFamilyCase(item: string): BenchCase | null {
  const m = /^([A-Za-z]+Norm)(?:\/([0-9]+))?(?:[: ]([A-Z]+))?\s*[:[]\s*([0-9x, ]+)]?$/i.exec(item);
  if (!m) return null;
  const norm = FAMILY_NORMS.find((n) => n.toLowerCase() === m[1].toLowerCase());
  if (!norm) throw new Error(`--cases: '${m[1]}' in '${item}' is not one of ${FAMILY_NORMS.join(', ')}`);
  const shape = m[4].split(/[x, ]+/).filter(Boolean).map(Number);
  if (m[2] !== undefined && norm !== 'GroupNorm') throw new Error(`--cases ${item}: only GroupNorm takes /GROUPS`);
  const rows = norm === 'LayerNorm' || norm === 'RMSNorm';
  if (rows && m[3] !== undefined) throw new Error(`--cases ${item}: ${norm} takes no layout (it normalizes the last dimension): ${norm}:DIMS`);
  if (!rows && m[3] === undefined) throw new Error(`--cases ${item}: ${norm} needs a layout: ${norm}${norm === 'GroupNorm' ? '/G' : ''}:LAYOUT:DIMS`);
  let layout: Layout;
  if (rows) {
    if (shape.length < 2 || shape.length > 5) throw new Error(`--cases ${item}: ${norm} needs 2 to 5 dimensions; got ${shape.length}`);
    layout = rowLayout(shape.length);
  } else {
    const given: string = m[3];
    checkLayout(given, '--cases layout');
    layout = given;
  }
  channelView(layout, shape, `--cases ${item}`);
  const c: BenchCase = { norm, layout, shape };
  if (norm === 'GroupNorm') {
    const G = m[2] === undefined ? 32 : Number(m[2]);
    const C = shape[channelAxis(layout)];
    if (!(G >= 1 && C % G === 0)) throw new Error(`--cases ${item}: GroupNorm's groups (${G}) must divide the ${C} channels`);
    c.numGroups = G;
  }
  return c;
}

function parseCases(list: string): { cases: BenchCase[]; tfjs: TfjsSelection | null } {
  const out: BenchCase[] = [];
  let tfjs = null as TfjsSelection | null;
  // Commas separate cases, except inside a name's brackets (NCHW [8,32,32,32]).
  for (const item of list.split(/,(?![^[]*])/).map((s) => s.trim()).filter(Boolean)) {
    // TF.js's sets: named, they are required; within quick and all, skipped where TF.js is missing.
    const tfjsSet = item === 'tfjs' || item === 'all' ? TFJS_CASES : item === 'tfjs-quick' || item === 'quick' ? TFJS_QUICK_CASES : null;
    if (tfjsSet) {
      const before = tfjs;
      tfjs = { cases: [...(before?.cases ?? []), ...tfjsSet.filter((c) => !before?.cases.includes(c))], required: item.startsWith('tfjs') || (before?.required ?? false) };
      if (item.startsWith('tfjs')) continue;
    }
    const named: Record<string, BenchCase[]> = {
      default: CASES,
      large: LARGE_CASES,
      batchnorm: NODE_CASES,
      family: FAMILY_CASES,
      'family-quick': FAMILY_QUICK_CASES,
      all: ALL_NODE_CASES,
      quick: NODE_QUICK_CASES,
    };
    if (item in named) {
      out.push(...named[item]);
      continue;
    }
    const family = parseFamilyCase(item);
    if (family) {
      out.push(family);
      continue;
    }
    const m = /^([A-Z]+)\s*[:[]([0-9x, ]+)]?$/.exec(item);
    if (!m) {
      throw new Error(
        `--cases: '${item}' is not LAYOUT:DIMS (e.g. NCHW:8x32x32x32), LayerNorm:DIMS, RMSNorm:DIMS, GroupNorm/G:LAYOUT:DIMS, InstanceNorm:LAYOUT:DIMS or default, large, batchnorm, family, family-quick, tfjs, tfjs-quick, quick, all`,
      );
    }
    const layout = m[1];
    checkLayout(layout, '--cases layout');
    const shape = m[2].split(/[x, ]+/).filter(Boolean).map(Number);
    channelView(layout, shape, `--cases ${item}`);
    out.push({ layout, shape });
  }
  const seen = new Set<string>();
  return { cases: out.filter((c) => !seen.has(caseName(c)) && (seen.add(caseName(c)), true)), tfjs };
}

/** Parses the command line (throws an Error naming the bad option). */
export function parseOptions(argv: string[]): Options {
  const o: Options = {
    cases: ALL_NODE_CASES,
    tfjs: null,
    modes: [...MODES],
    quick: false,
    samples: 7,
    minSampleMs: 4,
    warmupMs: 300,
    tolerance: 1e-4,
    peer: null,
    torchCompile: false,
    resample: null,
    checkOnly: false,
    python: 'python3',
    compare: null,
    out: null,
    help: false,
  };
  let cases: string | null = null;
  const number = (name: string, v: string, min: number) => {
    const x = Number(v);
    if (!(Number.isFinite(x) && x >= min)) throw new Error(`${name} must be a number >= ${min}; got '${v}'`);
    return x;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--quick':
        o.quick = true;
        break;
      case '--cases':
        cases = value();
        break;
      case '--modes':
        o.modes = value()
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
          .map((s) => {
            const mode = MODE_ALIASES[s];
            if (!mode) throw new Error(`--modes: '${s}' is not inference, training, forward or backward`);
            return mode;
          });
        o.modes = MODES.filter((m) => o.modes.includes(m));
        break;
      case '--samples':
        o.samples = number(flag, value(), 7);
        if (!Number.isInteger(o.samples)) throw new Error(`--samples must be an integer; got ${o.samples}`);
        break;
      case '--min-sample-ms':
        o.minSampleMs = number(flag, value(), 0);
        break;
      case '--warmup-ms':
        o.warmupMs = number(flag, value(), 0);
        break;
      case '--tolerance':
        o.tolerance = number(flag, value(), 0);
        break;
      case '--peer': {
        const v = value();
        if (v !== 'pytorch') throw new Error(`--peer: only 'pytorch' is supported; got '${v}'`);
        o.peer = 'pytorch';
        break;
      }
      case '--resample':
        o.resample = number(flag, value(), 0);
        if (!Number.isInteger(o.resample)) throw new Error(`--resample must be an integer; got ${o.resample}`);
        break;
      case '--check-only':
        o.checkOnly = true;
        break;
      case '--torch-compile':
        o.torchCompile = true;
        break;
      case '--python':
        o.python = value();
        break;
      case '--compare':
        o.compare = value();
        break;
      case '--out':
        o.out = value();
        break;
      case '--help':
      case '-h':
        o.help = true;
        break;
      default:
        throw new Error(`unknown option '${arg}'`);
    }
  }
  ({ cases: o.cases, tfjs: o.tfjs } = parseCases(cases ?? (o.quick ? 'quick' : 'all')));
  if (o.cases.length === 0 && !o.tfjs) throw new Error('--cases selects no case');
  if (o.modes.length === 0) throw new Error('--modes selects no mode');
  if (o.torchCompile && !o.peer) throw new Error('--torch-compile needs --peer pytorch');
  if (o.checkOnly && o.peer) throw new Error('--check-only times nothing: it takes no --peer');
  return o;
}
