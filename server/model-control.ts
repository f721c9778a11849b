// This process's side of the Models page: follows the model chosen in Redis (ActiveModel) and
// switches its generator to it live. Requests in flight finish on the model they started on
// (SwitchableGenerator); a model that fails to load leaves the serving one in place and is
// reported on the page.
import path from 'node:path';
import type { Logger } from '../core/logger.js';
import { modelDirOf, type SwitchableGenerator, type TextGenerator } from '../model/index.js';
import type { ActiveModel, ActiveModelChoice } from './active-model.js';

export interface ModelStatus {
  /** The model this process serves (a name from the Models page, or the folder it started with). */
  serving: string;
  servingDir: string;
  /** Being loaded to replace it. */
  loading?: string;
  /** The last switch that failed. */
  error?: { name: string; message: string; at: string };
}

export interface ModelControlOptions {
  generator: SwitchableGenerator;
  /** Name and folder of the model the process started with. */
  serving: { name: string; dir: string };
  modelsDir: string;
  /** Loads a model folder as the process serves it (instrumented, its batch and queue sizes). */
  load: (dir: string) => Promise<TextGenerator>;
  log: Logger;
}

export class ModelControl {
  private state: ModelStatus;
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly o: ModelControlOptions) {
    this.state = { serving: o.serving.name, servingDir: path.resolve(o.serving.dir) };
  }

  status(): ModelStatus {
    return { ...this.state };
  }

  /** Follows the choice in Redis from now on (the current one included). */
  watch(active: ActiveModel): Promise<() => Promise<void>> {
    return active.watch((c) => void this.apply(c));
  }

  /** Switches to the chosen model unless it is the one served; one switch at a time, in order. */
  apply(choice: ActiveModelChoice | null): Promise<void> {
    this.queue = this.queue.then(() => this.switchTo(choice));
    return this.queue;
  }

  private async switchTo(choice: ActiveModelChoice | null): Promise<void> {
    if (!choice) return;
    const dir = modelDirOf(choice.name, this.o.modelsDir);
    if (dir && path.resolve(dir) === this.state.servingDir) return;
    const fail = (message: string) => {
      this.state = { ...this.state, loading: undefined, error: { name: choice.name, message, at: new Date().toISOString() } };
      this.o.log.error({ model: choice.name, err: message }, 'model switch failed; the previous model keeps serving');
    };
    if (!dir) {
      fail(`there is no model "${choice.name}" in ${path.resolve(this.o.modelsDir)} on this host`);
      return;
    }
    this.state = { ...this.state, loading: choice.name };
    this.o.log.info({ model: choice.name, dir, by: choice.actor }, 'switching model');
    let next: TextGenerator;
    try {
      next = await this.o.load(dir);
    } catch (err) {
      fail((err as Error).message);
      return;
    }
    const done = this.o.generator.switchTo(next);
    this.state = { serving: choice.name, servingDir: path.resolve(dir) };
    this.o.log.info({ model: choice.name, parameters: next.info().parameters }, 'model switched');
    // The replaced model closes once its requests have finished; the next switch need not wait.
    void done.catch((err: Error) => this.o.log.warn({ err: err.message }, 'the replaced model did not close cleanly'));
  }
}
