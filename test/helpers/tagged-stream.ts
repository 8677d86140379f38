// Drives a random stream of tagged requests through the raw API of a traced
// null-engine ring, recording for every request what the task-set rules say
// about it at arrival, and checks the trace against those rules.
//
// Completions only happen inside the ring's reap pass, and every request
// finished in a pass is delivered in that pass's callback (we keep fewer in
// flight than the completion array holds). So when JS submits, the requests
// that have not been delivered are exactly the ones still incomplete, and
// `seenC` (the largest completion sequence delivered so far) marks the
// arrival point: every completion before it is <= seenC, every later one > seenC.
import path from 'node:path';

import { OP, Ring, TAG, type BlockDevice } from '../../dist/lib/index.js';
import { rng, tempDir } from './tmp';

export interface Traced {
  id: number;
  dev: number;
  tag: number;
  op: number;
  seenC: number;
  /** HEAD only: older same-device requests dormant at its arrival. */
  dormantOlder: number[];
  issued: number;
  completed: number;
  result: number;
  done: boolean;
}

export interface StreamOptions {
  seed: number;
  total: number;
  devices: number;
  depth: number;
  maxInflight: number;
  latencyUs: number | [number, number];
  /** Picks a tag for a request on device `dev`; default 75% SIMPLE, 15% ORDERED, 10% HEAD. */
  tagFor?: (dev: number, rand: () => number) => number;
}

const BLOCK = 512;

function defaultTag(_dev: number, rand: () => number): number {
  const x = rand();
  return x < 0.75 ? TAG.simple : x < 0.9 ? TAG.ordered : TAG.head;
}

export async function runTaggedStream(o: StreamOptions): Promise<Traced[]> {
  const t = tempDir();
  const ring = new Ring({ engine: 'null', depth: o.depth, trace: true, nullEngine: { latencyUs: o.latencyUs, seed: o.seed } });
  try {
    const devs: BlockDevice[] = [];
    for (let i = 0; i < o.devices; i++) devs.push(await ring.open(path.join(t.dir, `dev${i}`), { create: true, size: 1 << 20 }));
    const raw = ring.raw;
    raw.registerBuffers([Buffer.alloc(BLOCK * 8)]);
    const rand = rng(o.seed);
    const tagFor = o.tagFor ?? defaultTag;
    const recs: Traced[] = [];
    const pending: Traced[][] = devs.map(() => []);
    let inflight = 0;
    let seenC = 0;
    let delivered = 0;

    const arrive = (d: number): Traced => {
      const tag = tagFor(d, rand);
      const x = rand();
      const op = x < 0.7 ? OP.write : x < 0.9 ? OP.read : OP.flush;
      const r: Traced = { id: recs.length, dev: d, tag, op, seenC, dormantOlder: [], issued: 0, completed: 0, result: 0, done: false };
      if (tag === TAG.head) {
        // Which older requests are dormant now: those some older incomplete
        // request blocks under the rules (SIMPLE: a barrier; ORDERED: anything).
        const list = (pending[d] = pending[d]!.filter((p) => !p.done));
        let any = false;
        let barrier = false;
        for (const p of list) {
          if ((p.tag === TAG.simple && barrier) || (p.tag === TAG.ordered && any)) r.dormantOlder.push(p.id);
          any = true;
          if (p.tag !== TAG.simple) barrier = true;
        }
      }
      pending[d]!.push(r);
      recs.push(r);
      return r;
    };

    await new Promise<void>((resolve, reject) => {
      const pump = (): void => {
        while (recs.length < o.total && inflight < o.maxInflight) {
          const n = Math.min(1 + Math.floor(rand() * 48), o.total - recs.length, o.maxInflight - inflight);
          for (let s = 0; s < n; s++) {
            const r = arrive(Math.floor(rand() * o.devices));
            const transfer = r.op !== OP.flush;
            raw.prepare(s, r.id, r.op, devs[r.dev]!, 0, transfer ? BLOCK * (r.id % 8) : 0, transfer ? BLOCK : 0,
              transfer ? BLOCK * Math.floor(rand() * 64) : 0, r.tag);
          }
          raw.submit(n);
          inflight += n;
          if (rand() < 0.5) break; // leave room so later arrivals meet different states
        }
      };
      raw.onComplete = (cq, count) => {
        try {
          for (let i = 0; i < count; i++) {
            const r = recs[cq[i * 4]!]!;
            r.result = cq[i * 4 + 1]!;
            r.issued = cq[i * 4 + 2]!;
            r.completed = cq[i * 4 + 3]!;
            r.done = true;
            if (r.completed > seenC) seenC = r.completed;
          }
          inflight -= count;
          delivered += count;
          if (delivered === o.total) resolve();
          else pump();
        } catch (e) {
          reject(e);
        }
      };
      pump();
    });
    return recs;
  } finally {
    await ring.close();
    t.cleanup();
  }
}

const TAG_NAME = ['SIMPLE', 'ORDERED', 'HEAD'];
const name = (r: Traced): string => `#${r.id} ${TAG_NAME[r.tag]} dev${r.dev} (issued ${r.issued}, completed ${r.completed})`;

/** Per request, in arrival order per device: latest completion among older barriers, and among all older. */
function blockers(recs: Traced[]): { barrierC: number[]; allC: number[] } {
  const barrierC: number[] = [];
  const allC: number[] = [];
  const lastBarrier = new Map<number, number>();
  const lastAll = new Map<number, number>();
  for (const r of recs) {
    const b = lastBarrier.get(r.dev) ?? 0;
    const a = lastAll.get(r.dev) ?? 0;
    barrierC[r.id] = b;
    allC[r.id] = a;
    lastAll.set(r.dev, Math.max(a, r.completed));
    if (r.tag !== TAG.simple) lastBarrier.set(r.dev, Math.max(b, r.completed));
  }
  return { barrierC, allC };
}

/** SIMPLE after every older ORDERED/HEAD completed; ORDERED after every older request completed. */
export function checkTaskRules(recs: Traced[]): string[] {
  const bad: string[] = [];
  const { barrierC, allC } = blockers(recs);
  for (const r of recs) {
    if (!r.done || r.issued <= 0 || r.completed <= r.issued) bad.push(`${name(r)}: bad trace`);
    if (r.tag === TAG.simple && r.issued <= barrierC[r.id]!) bad.push(`${name(r)} issued before an older barrier completed (${barrierC[r.id]})`);
    if (r.tag === TAG.ordered && r.issued <= allC[r.id]!) bad.push(`${name(r)} issued before an older request completed (${allC[r.id]})`);
  }
  return bad;
}

/** Every HEAD OF QUEUE is issued before each older request that was dormant when it arrived. */
export function checkHeadOfQueue(recs: Traced[]): string[] {
  const bad: string[] = [];
  for (const h of recs) {
    for (const id of h.dormantOlder) {
      const x = recs[id]!;
      if (x.issued < h.issued) bad.push(`${name(x)} was dormant when ${name(h)} arrived, yet was issued first`);
    }
  }
  return bad;
}

/** Index of the first element of an ascending array greater than t. */
function upperBound(sorted: number[], t: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * With room in the engine, a request is issued as soon as the rules allow
 * on its own device: at arrival, or in the reap pass that completes its last
 * blocker, before any later completion on any device. A device's tags
 * therefore never delay another device, and no release is lost.
 */
export function checkPromptIssue(recs: Traced[]): string[] {
  const bad: string[] = [];
  const { barrierC, allC } = blockers(recs);
  const completions = recs.map((r) => r.completed).sort((a, b) => a - b);
  const nextCompletion = (t: number): number => {
    const i = upperBound(completions, t);
    return i < completions.length ? completions[i]! : Infinity;
  };
  for (const r of recs) {
    const blocker = r.tag === TAG.head ? 0 : r.tag === TAG.ordered ? allC[r.id]! : barrierC[r.id]!;
    const ready = Math.max(r.seenC, blocker);
    const deadline = nextCompletion(ready);
    if (r.issued > deadline) bad.push(`${name(r)} could be issued after ${ready} but waited past completion ${deadline}`);
  }
  return bad;
}

/**
 * In a full engine a HEAD OF QUEUE request goes ahead of enabled requests
 * waiting for room: it takes the first slot that frees after the HEADs that
 * arrived later and went ahead of it (SAM: the newest HEAD OF QUEUE task is
 * placed first). Each slot comes from a completion, and one reap pass
 * completes at most `depth`, so at most `depth` + (newer HEADs issued first)
 * completions lie between its arrival and its issue.
 */
export function checkHeadFirstInLine(recs: Traced[], depth: number): string[] {
  const completions = recs.map((r) => r.completed).sort((a, b) => a - b);
  const countUpTo = (t: number): number => upperBound(completions, t);
  const heads = recs.filter((r) => r.tag === TAG.head);
  const bad: string[] = [];
  heads.forEach((h, i) => {
    let ahead = 0;
    for (let j = i + 1; j < heads.length && heads[j]!.seenC < h.issued; j++) if (heads[j]!.issued < h.issued) ahead++;
    const waited = countUpTo(h.issued) - countUpTo(h.seenC);
    if (waited > depth + ahead) bad.push(`${name(h)} waited for ${waited} completions after arriving (${ahead} newer HEADs went first)`);
  });
  return bad;
}

/** Expected result of every request: full length for transfers, 0 for flush. */
export function checkResults(recs: Traced[]): string[] {
  return recs.filter((r) => r.result !== (r.op === OP.flush ? 0 : BLOCK)).map((r) => `${name(r)}: result ${r.result}`);
}
