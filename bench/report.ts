// Human-readable output: Markdown pipe tables (readable in a terminal and
// pasteable into RESULTS.md) and a dependency-free SVG chart.

import { describeJob } from './options';
import type { JobResult } from './workload';

export function table(head: string[], rows: string[][], right: boolean[] = []): string {
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const cell = (s: string, i: number): string => (right[i] ? s.padStart(width[i]!) : s.padEnd(width[i]!));
  const line = (r: string[]): string => `| ${r.map(cell).join(' | ')} |`;
  const rule = `|${width.map((w, i) => (right[i] ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [line(head), rule, ...rows.map(line)].join('\n');
}

export const num = (n: number): string => Math.round(n).toLocaleString('en-US');
export const mib = (bytesPerSec: number): string => (bytesPerSec / 1048576).toFixed(1);
export const lat = (us: number): string => (us >= 1000 ? us.toFixed(0) : us >= 10 ? us.toFixed(1) : us.toFixed(2));

export const RESULT_HEAD = ['contender', 'job', 'IOPS', 'MiB/s', 'clat p50 µs', 'p99', 'p99.9', 'max', 'usr %', 'sys %'];
export const RESULT_RIGHT = [false, false, true, true, true, true, true, true, true, true];

export function resultRow(r: JobResult): string[] {
  return [r.contender, describeJob(r.job), num(r.iops), mib(r.bw), lat(r.clat.p50), lat(r.clat.p99),
    lat(r.clat.p999), lat(r.clat.max), r.cpu.usr.toFixed(1), r.cpu.sys.toFixed(1)];
}

export function resultsTable(results: JobResult[]): string {
  return table(RESULT_HEAD, results.map(resultRow), RESULT_RIGHT);
}

export interface Series {
  name: string;
  points: { x: number; y: number }[];
}

const COLORS = ['#d62728', '#ff7f0e', '#1f77b4', '#2ca02c', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#17becf'];

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function niceStep(max: number): number {
  const raw = max / 5;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw)!;
}

const shortNum = (n: number): string => (n >= 1e6 ? `${+(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${+(n / 1e3).toFixed(1)}k` : `${n}`);

/** One line chart per panel: IOPS (y, linear) against iodepth (x, log2). */
export function svgChart(title: string, panels: { title: string; series: Series[] }[]): string {
  const W = 820;
  const PH = 340;
  const L = 70;
  const R = 250;
  const T = 40;
  const B = 40;
  const H = 30 + panels.length * PH;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
  ];
  panels.forEach((panel, pi) => {
    const y0 = 30 + pi * PH;
    const pw = W - L - R;
    const ph = PH - T - B;
    const xs = [...new Set(panel.series.flatMap((s) => s.points.map((p) => p.x)))].sort((a, b) => a - b);
    const lx = xs.map((x) => Math.log2(x));
    const xmin = Math.min(...lx);
    const xmax = Math.max(...lx);
    const ymaxData = Math.max(1, ...panel.series.flatMap((s) => s.points.map((p) => p.y)));
    const step = niceStep(ymaxData);
    const ymax = Math.ceil((ymaxData * 1.05) / step) * step;
    const X = (x: number): number => L + (xmax === xmin ? pw / 2 : ((Math.log2(x) - xmin) / (xmax - xmin)) * pw);
    const Y = (y: number): number => y0 + T + ph - (y / ymax) * ph;
    out.push(`<text x="${L}" y="${y0 + T - 12}" font-size="13">${esc(panel.title)}</text>`);
    for (let v = 0; v <= ymax + 1e-9; v += step) {
      out.push(`<line x1="${L}" x2="${L + pw}" y1="${Y(v).toFixed(1)}" y2="${Y(v).toFixed(1)}" stroke="#ddd"/>`);
      out.push(`<text x="${L - 6}" y="${(Y(v) + 4).toFixed(1)}" text-anchor="end">${shortNum(v)}</text>`);
    }
    for (const x of xs) {
      out.push(`<line x1="${X(x).toFixed(1)}" x2="${X(x).toFixed(1)}" y1="${y0 + T}" y2="${y0 + T + ph}" stroke="#eee"/>`);
      out.push(`<text x="${X(x).toFixed(1)}" y="${y0 + T + ph + 16}" text-anchor="middle">${x}</text>`);
    }
    out.push(`<rect x="${L}" y="${y0 + T}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
    out.push(`<text x="${L + pw / 2}" y="${y0 + T + ph + 32}" text-anchor="middle">iodepth</text>`);
    out.push(`<text transform="translate(16 ${y0 + T + ph / 2}) rotate(-90)" text-anchor="middle">IOPS</text>`);
    panel.series.forEach((s, i) => {
      const color = COLORS[i % COLORS.length]!;
      const pts = [...s.points].sort((a, b) => a.x - b.x);
      if (pts.length > 1) {
        const d = pts.map((p, k) => `${k ? 'L' : 'M'}${X(p.x).toFixed(1)} ${Y(p.y).toFixed(1)}`).join(' ');
        out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"/>`);
      }
      for (const p of pts) {
        out.push(`<circle cx="${X(p.x).toFixed(1)}" cy="${Y(p.y).toFixed(1)}" r="3.5" fill="${color}"><title>${esc(s.name)}: ${num(p.y)} IOPS at iodepth ${p.x}</title></circle>`);
      }
      const ly = y0 + T + 8 + i * 20;
      out.push(`<line x1="${L + pw + 14}" x2="${L + pw + 38}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"/>`);
      out.push(`<text x="${L + pw + 44}" y="${ly + 4}">${esc(s.name)}</text>`);
    });
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
