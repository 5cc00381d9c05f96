/** uPlot charts of the demo: training loss and validation accuracy of both runs, and gradient-descent convergence. */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { RunProgress } from './training.js';
import type { ScalingResult } from './scaling.js';

const COLORS = ['#1f77b4', '#d62728', '#2ca02c'];
/** What the training charts draw of a run (the TF.js page's runs have these too). */
type RunCurves = Pick<RunProgress, 'name' | 'losses' | 'accuracies'>;
/** One color per feature representation of the scaling panel, by ScalingResult.key. */
const SCALING_COLORS: Record<ScalingResult['key'], string> = { raw: '#1f77b4', units: '#ff7f0e', 'min-max': '#d62728', standardize: '#2ca02c' };

/** Initial training loss is about ln 10 ≈ 2.3: the loss axis spans this before the first point. */
const EMPTY_LOSS_RANGE: uPlot.Range.MinMax = [0.1, 10];

function width(container: HTMLElement): number {
  return Math.max(320, Math.min(container.clientWidth || 560, 640));
}

type Format = (v: number) => string;
const integer: Format = (v) => Math.round(v).toLocaleString('en-US');
const fixed3: Format = (v) => v.toFixed(3);
const percent: Format = (v) => `${(100 * v).toFixed(1)}%`;
const scientific: Format = (v) => v.toExponential(2);

/**
 * A legend value: the formatted value under the cursor, or nothing where the series has no point
 * there (uPlot's default shows "--"). Off the chart, `latest` shows the last step's values
 * instead; otherwise the legend is empty.
 */
function legendValue(format: Format, latest: boolean): uPlot.Series['value'] {
  return (u, raw, seriesIdx, dataIdx) => {
    let value: number | null | undefined = raw;
    if (dataIdx == null) {
      const n = u.data[0].length;
      if (!latest || n === 0) return '';
      value = u.data[seriesIdx][n - 1];
    }
    return value == null || !Number.isFinite(value) ? '' : format(value);
  };
}

/**
 * Two charts over training steps: loss (log scale) and validation accuracy. The step axis spans
 * the whole session (0 to `totalSteps`) from the start, so both charts show their axes before
 * the first point and the curves grow from left to right.
 */
export function trainingPlots(lossEl: HTMLElement, accuracyEl: HTMLElement, runs: RunCurves[], totalSteps: number) {
  const steps: uPlot.Range.Function = () => [0, Math.max(1, totalSteps)];
  const series = (format: Format): uPlot.Series[] => [
    { label: 'step', value: legendValue(integer, true) },
    ...runs.map((r, i) => ({ label: r.name, stroke: COLORS[i], width: 2, spanGaps: true, value: legendValue(format, true) })),
  ];
  const empty = (): uPlot.AlignedData => [[], ...runs.map(() => [])];
  const loss = new uPlot(
    {
      title: 'Training loss (softmax cross-entropy)',
      width: width(lossEl),
      height: 280,
      scales: {
        x: { time: false, range: steps },
        y: { distr: 3, range: (_u, min, max) => (min == null || max == null ? EMPTY_LOSS_RANGE : uPlot.rangeLog(min, max, 10, false)) },
      },
      axes: [{ label: 'step' }, {}],
      series: series(fixed3),
    },
    empty(),
    lossEl,
  );
  const accuracy = new uPlot(
    {
      title: 'Validation accuracy',
      width: width(accuracyEl),
      height: 280,
      scales: { x: { time: false, range: steps }, y: { range: [0, 1] } },
      axes: [{ label: 'step' }, { values: (_u, v) => v.map((a) => `${Math.round(a * 100)}%`) }],
      series: series(percent),
    },
    empty(),
    accuracyEl,
  );
  const show = (plot: uPlot, data: uPlot.AlignedData) => {
    plot.setData(data);
    // Without data uPlot leaves the x scale unset and draws no axes: set it to the session's steps.
    if (data[0].length === 0) plot.setScale('x', { min: 0, max: Math.max(1, totalSteps) });
  };
  show(loss, empty());
  show(accuracy, empty());
  return {
    update(current: RunCurves[]) {
      show(loss, aligned(current.map((r) => r.losses)));
      show(accuracy, aligned(current.map((r) => r.accuracies)));
    },
  };
}

/** Gradient-descent distance to the optimum against steps, log-log, one line per data version. */
export function scalingPlot(el: HTMLElement, results: ScalingResult[]): void {
  new uPlot(
    {
      title: 'Gradient descent: relative distance to the least-squares optimum',
      width: width(el),
      height: 300,
      scales: { x: { time: false, distr: 3 }, y: { distr: 3 } },
      axes: [{ label: 'step', values: (_u, v) => v.map(powerOfTen) }, { values: (_u, v) => v.map(powerOfTen) }],
      series: [
        { label: 'step', value: legendValue(integer, false) },
        ...results.map((r) => ({ label: r.name, stroke: SCALING_COLORS[r.key], width: 2, spanGaps: true, value: legendValue(scientific, false) })),
      ],
    },
    // log scales cannot show step 0
    aligned(results.map((r) => r.curve.filter(([step]) => step > 0))),
    el,
  );
}

/** Log-axis tick labels: 1, 10, 100, 1000, then 1e4, 1e5, ...; 0.1, 0.01, then 1e-3, .... */
function powerOfTen(v: number): string {
  if (v == null) return '';
  return v >= 1e-2 && v <= 1e3 ? String(Number(v.toPrecision(1))) : v.toExponential(0).replace('e+', 'e');
}

/** uPlot's data: one sorted x array and one y array per series, null where a series has no point. */
function aligned(series: [number, number][][]): uPlot.AlignedData {
  const xs = [...new Set(series.flatMap((s) => s.map(([x]) => x)))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const ys = series.map((s) => {
    const y: (number | null)[] = new Array(xs.length).fill(null);
    for (const [x, v] of s) y[index.get(x)!] = Number.isFinite(v) ? v : null;
    return y;
  });
  return [xs, ...ys];
}
