// SCSI task attributes (README "Ordering") for the qcow2 requests the
// engine's scheduler does not see: resize and close, and every call while
// the image is mapped or has extended L2 entries (the rest go to the engine
// with their tags). The same
// rules as native/engine/scheduler.h:
//   SIMPLE   runs once every older ORDERED and HEAD OF QUEUE finished;
//   ORDERED  runs once every older request finished; newer ones wait for it;
//   HEAD     runs at once; newer requests treat it as older.
// With no ORDERED or HEAD pending a SIMPLE request runs at once in O(1).

import { TAG } from '../records';

interface Dormant {
  tag: number;
  start: () => void;
}

export class TaskGate {
  #active = 0; // running
  #barriers = 0; // running ORDERED/HEAD
  readonly #dormant: Dormant[] = []; // FIFO
  #idleWaiters: Array<() => void> = [];

  /** Runs fn once the tag's (records.ts TAG) rule allows; settles with its result. */
  run<T>(tag: number, fn: () => Promise<T>): Promise<T> {
    if (tag === TAG.head || (this.#dormant.length === 0 && (tag === TAG.simple ? this.#barriers === 0 : this.#active === 0))) {
      return this.#start(tag, fn);
    }
    return new Promise<T>((resolve, reject) => {
      this.#dormant.push({ tag, start: () => this.#start(tag, fn).then(resolve, reject) });
    });
  }

  /** Hot path: a SIMPLE request that may start now is counted in, and the caller calls leave(); false if it must queue. */
  tryEnterSimple(): boolean {
    if (this.#dormant.length !== 0 || this.#barriers !== 0) return false;
    this.#active++;
    return true;
  }

  leaveSimple(): void {
    this.#done(TAG.simple);
  }

  #start<T>(tag: number, fn: () => Promise<T>): Promise<T> {
    this.#active++;
    if (tag !== TAG.simple) this.#barriers++;
    let p: Promise<T>;
    try {
      p = fn();
    } catch (e) {
      p = Promise.reject(e);
    }
    return p.then((v) => {
      this.#done(tag);
      return v;
    }, (e: unknown) => {
      this.#done(tag);
      throw e;
    });
  }

  #done(tag: number): void {
    this.#active--;
    if (tag !== TAG.simple) this.#barriers--;
    while (this.#dormant.length) {
      const d = this.#dormant[0]!;
      if (d.tag === TAG.simple ? this.#barriers !== 0 : this.#active !== 0) break;
      this.#dormant.shift();
      d.start();
      if (d.tag !== TAG.simple) break; // an ORDERED request now holds back everything newer
    }
    if (this.#active === 0 && this.#dormant.length === 0 && this.#idleWaiters.length) {
      const w = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const f of w) f();
    }
  }

  /** Settles once nothing is running or waiting. */
  idle(): Promise<void> {
    if (this.#active === 0 && this.#dormant.length === 0) return Promise.resolve();
    return new Promise((r) => this.#idleWaiters.push(r));
  }
}
