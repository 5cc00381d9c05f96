/** uPlot charts of the demo: training loss and validation accuracy of both runs, and gradient-descent convergence. */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { RunProgress } from './training.js';
import type { ScalingResult } from './scaling.js';

const COLORS = ['#1f77b4', '#d62728', '#2ca02c'];

function width(container: HTMLElement): number {
  return Math.max(320, Math.min(container.clientWidth || 560, 640));
}

/** Two charts over training steps: loss (log scale) and validation accuracy. */
export function trainingPlots(lossEl: HTMLElement, accuracyEl: HTMLElement, runs: RunProgress[]) {
  const series = (label: string) => runs.map((r, i) => ({ label: `${r.name}${label}`, stroke: COLORS[i], width: 2, spanGaps: true }));
  const loss = new uPlot(
    {
      title: 'Training loss (softmax cross-entropy)',
      width: width(lossEl),
      height: 280,
      scales: { x: { time: false }, y: { distr: 3 } },
      axes: [{ label: 'step' }, {}],
      series: [{ label: 'step' }, ...series('')],
    },
    [[], ...runs.map(() => [])],
    lossEl,
  );
  const accuracy = new uPlot(
    {
      title: 'Validation accuracy',
      width: width(accuracyEl),
      height: 280,
      scales: { x: { time: false }, y: { range: [0, 1] } },
      axes: [{ label: 'step' }, { values: (_u, v) => v.map((a) => `${Math.round(a * 100)}%`) }],
      series: [{ label: 'step' }, ...series('')],
    },
    [[], ...runs.map(() => [])],
    accuracyEl,
  );
  return {
    update(current: RunProgress[]) {
      loss.setData(aligned(current.map((r) => r.losses)));
      accuracy.setData(aligned(current.map((r) => r.accuracies)));
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
      series: [{ label: 'step' }, ...results.map((r, i) => ({ label: r.name, stroke: COLORS[i], width: 2, spanGaps: true }))],
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
