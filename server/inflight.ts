// In-flight web-chat generations, so a shutdown can let them finish within a bound and cancel the
// rest (their streams end with a "server restarting" notice rather than being cut mid-word).
export class InflightRequests {
  private readonly active = new Set<AbortController>();
  private readonly idle = new Set<() => void>();

  get size(): number {
    return this.active.size;
  }

  /** Registers one request; call the returned function when it has finished. */
  begin(): { signal: AbortSignal; controller: AbortController; end: () => void } {
    const controller = new AbortController();
    this.active.add(controller);
    return {
      signal: controller.signal,
      controller,
      end: () => {
        this.active.delete(controller);
        if (this.active.size === 0) for (const fn of [...this.idle]) fn();
      },
    };
  }

  /**
   * Waits up to `graceMs` for every request to finish, then aborts what is left and waits up to
   * `abortWaitMs` more for those to wind down. Returns how many had to be cancelled.
   */
  async drain(graceMs: number, abortWaitMs = 2000): Promise<number> {
    if (await this.waitIdle(graceMs)) return 0;
    const cancelled = this.active.size;
    for (const c of this.active) c.abort(new Error('server shutting down'));
    await this.waitIdle(abortWaitMs);
    return cancelled;
  }

  private waitIdle(ms: number): Promise<boolean> {
    if (this.active.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (v: boolean) => {
        clearTimeout(t);
        this.idle.delete(onIdle);
        resolve(v);
      };
      const onIdle = () => done(true);
      const t = setTimeout(() => done(false), ms);
      this.idle.add(onIdle);
    });
  }
}
