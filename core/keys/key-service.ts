// The access-key system as one object for its callers: the key's rotation and schedule
// (key-rotation.ts), the gate that verifies attempts and authorises users (access-gate.ts), and
// the failed-attempt statistics (../usage/failed-key-attempts.ts), wired to share one Redis store.
import type { AuditLog } from '../audit/audit-log.js';
import { silentLogger, type Logger } from '../logger.js';
import type { Store } from '../redis.js';
import { FailedKeyAttempts } from '../usage/failed-key-attempts.js';
import { AccessGate, type Authorisation, type BreakerStatus, type LockStatus, type VerifyResult } from './access-gate.js';
import type { KeyServiceConfig } from './key-records.js';
import { KeyRotation, type CurrentKey, type KeyHistoryEntry, type RotationEvent, type ScheduleInfo } from './key-rotation.js';

export { InvalidScheduleError, type Schedule } from './schedule.js';
export type { Authorisation, BreakerStatus, LockStatus, VerifyResult } from './access-gate.js';
export type { KeyServiceConfig, RotationCause } from './key-records.js';
export type { CurrentKey, KeyHistoryEntry, PreviousKey, RotationEvent, ScheduleInfo } from './key-rotation.js';

export interface KeyServiceOptions {
  /** Injectable clock for tests (grace windows, catch-up). */
  now?: () => Date;
  /** How many history entries Redis keeps. */
  historyMax?: number;
  /** Longest wait between retries of a failed scheduled rotation. */
  maxRetryMs?: number;
  /**
   * How often to check for a missed slot besides the cron timer (default 60 s). node-cron skips a
   * run that fires more than a second late (a busy event loop at midnight); this catches it.
   */
  safetyIntervalMs?: number;
  /**
   * Verify key attempts over the store's auto-pipelined connection (Store.pipelined; default
   * true): verifications issued in the same tick share one write, roughly doubling throughput
   * under load. The shared connection (every other command) is left without auto-pipelining.
   */
  autoPipelining?: boolean;
  /** The audit log, for the rotations this process makes on schedule. */
  audit?: AuditLog;
}

export class KeyService {
  readonly rotation: KeyRotation;
  readonly gate: AccessGate;
  readonly failures: FailedKeyAttempts;

  constructor(store: Store, config: KeyServiceConfig, logger: Logger = silentLogger, options: KeyServiceOptions = {}) {
    const { now, historyMax, maxRetryMs, safetyIntervalMs, autoPipelining, audit } = options;
    this.rotation = new KeyRotation(store, config, logger, {
      now, historyMax, maxRetryMs, safetyIntervalMs, audit, onKeyChanged: () => this.gate.forgetKey(),
    });
    this.gate = new AccessGate(store, config, logger, { now, autoPipelining, ensureKey: () => this.rotation.ensureKey() });
    this.failures = new FailedKeyAttempts(store, now);
  }

  /** Loads the schedule, makes sure a key exists, subscribes to rotations, starts the timer and catches up. */
  start(): Promise<void> {
    return this.rotation.start();
  }

  stop(): Promise<void> {
    return this.rotation.stop();
  }

  /** Fires in every process sharing Redis (via pub/sub) when the key rotates. Returns an unsubscribe. */
  onRotate(listener: (e: RotationEvent) => unknown): () => void {
    return this.rotation.onRotate(listener);
  }

  /** Fires in every started process when the schedule is changed at run time. */
  onScheduleChange(listener: (s: ScheduleInfo) => unknown): () => void {
    return this.rotation.onScheduleChange(listener);
  }

  /** The current key (created on first use), with the next rotation time. */
  current(): Promise<CurrentKey> {
    return this.rotation.current();
  }

  /** Replaces the key now; the previous one stays valid for KEY_GRACE_MINUTES. */
  rotate(by: 'schedule' | 'admin' | 'cli', actor?: string): Promise<CurrentKey> {
    return this.rotation.rotate(by, actor);
  }

  /** Rotates for the scheduled instant `slot` unless some process already did; true when this call rotated. */
  runScheduledSlot(slot: Date): Promise<boolean> {
    return this.rotation.runScheduledSlot(slot);
  }

  /** Newest first. */
  history(limit?: number): Promise<KeyHistoryEntry[]> {
    return this.rotation.history(limit);
  }

  getSchedule(): Promise<ScheduleInfo> {
    return this.rotation.getSchedule();
  }

  /** Validates and stores a schedule; every started process switches to it at once. */
  setSchedule(cron: string, tz: string, actor?: string): Promise<ScheduleInfo> {
    return this.rotation.setSchedule(cron, tz, actor);
  }

  /** Forgets the run-time schedule: every started process goes back to KEY_ROTATE_CRON / KEY_ROTATE_TZ. */
  resetSchedule(actor?: string): Promise<ScheduleInfo> {
    return this.rotation.resetSchedule(actor);
  }

  /** Checks a chatter's key attempt; on success the user is authorised (see authorisation()). */
  verify(userId: string, attempt: string): Promise<VerifyResult> {
    return this.gate.verify(userId, attempt);
  }

  /** Whether the user may chat now. Cheap: one round trip. */
  authorisation(userId: string): Promise<Authorisation> {
    return this.gate.authorisation(userId);
  }

  /** Forgets a user's authorisation (they must send the key again, and count as new). */
  revoke(userId: string): Promise<void> {
    return this.gate.revoke(userId);
  }

  lockStatus(userId: string): Promise<LockStatus> {
    return this.gate.lockStatus(userId);
  }

  unlock(userId: string): Promise<void> {
    return this.gate.unlock(userId);
  }

  /** The sybil circuit breaker's state (see README "Access keys"). */
  breakerStatus(): Promise<BreakerStatus> {
    return this.gate.breakerStatus();
  }

  /** Failed attempts ever (well-formed wrong guesses, by anyone). */
  failedAttempts(): Promise<number> {
    return this.failures.total();
  }

  /** Failed attempts per hour, oldest first, ending with the current hour (see FailedKeyAttempts.hourly). */
  failedAttemptsHourly(hours?: number): Promise<{ startMs: number; counts: number[] }> {
    return this.failures.hourly(hours);
  }
}
