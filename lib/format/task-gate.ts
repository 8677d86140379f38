// SCSI task attributes (README "Ordering") for a device implemented in
// TypeScript (qcow2), whose guest requests do not pass through the
// engine's scheduler: SIMPLE waits for older ORDERED/HEAD, ORDERED for every
// older request, HEAD for nothing. Same rules as native/engine/scheduler.h.
import type { Tag } from '../validate';

interface Task {
  tag: number; // 0 simple, 1 ordered, 2 head
  done: boolean;
  finished: Promise<void>;
}

export class TaskGate {
  #tasks: Task[] = []; // older first; completed tasks pruned from the front

  /** Runs fn once the tag's rule allows; returns its result. */
  async run<T>(tag: number, fn: () => Promise<T>): Promise<T> {
    let finish!: () => void;
    const task: Task = { tag, done: false, finished: new Promise<void>((r) => (finish = r)) };
    const waitFor = tag === 2 ? [] : this.#tasks.filter((t) => !t.done && (tag === 1 || t.tag !== 0));
    // HEAD OF QUEUE counts as older than every request that arrives later.
    this.#tasks.push(task);
    try {
      if (waitFor.length) await Promise.all(waitFor.map((t) => t.finished));
      return await fn();
    } finally {
      task.done = true;
      finish();
      while (this.#tasks.length && this.#tasks[0]!.done) this.#tasks.shift();
    }
  }

  /** Settles once every task accepted so far has finished. */
  async idle(): Promise<void> {
    await Promise.all(this.#tasks.map((t) => t.finished));
  }
}

export type { Tag };
