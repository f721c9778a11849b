// Rotation schedules: validation and slot arithmetic. node-cron fires the timer; cron-parser
// computes the scheduled instants ("slots") so every process derives the same slot id for a run
// and the panel can show the next run times.
import { CronExpressionParser } from 'cron-parser';
import { validate as validateCron } from 'node-cron';
import { isTimeZone } from '../env.js';

/** A rotation schedule: a node-cron expression (optional seconds field) and an IANA time zone. */
export interface Schedule {
  cron: string;
  tz: string;
}

/** Thrown when a schedule cannot be used; the message says what is wrong, for the panel and CLI. */
export class InvalidScheduleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidScheduleError';
  }
}

const MAX_CRON_LENGTH = 200;

/** Trims and checks a schedule; returns the cleaned schedule or throws InvalidScheduleError. */
export function validateSchedule(cron: unknown, tz: unknown): Schedule {
  if (typeof cron !== 'string' || cron.trim() === '') throw new InvalidScheduleError('The cron expression is empty.');
  if (typeof tz !== 'string' || tz.trim() === '') throw new InvalidScheduleError('The time zone is empty.');
  const c = cron.trim().replace(/\s+/g, ' ');
  const z = tz.trim();
  if (c.length > MAX_CRON_LENGTH) throw new InvalidScheduleError(`The cron expression is longer than ${MAX_CRON_LENGTH} characters.`);
  const fields = c.split(' ').length;
  if (fields < 5 || fields > 6) {
    throw new InvalidScheduleError(
      `"${c}" has ${fields} field${fields === 1 ? '' : 's'}; expected 5 (minute hour day month weekday) or 6 (with seconds first), e.g. "0 0 * * *".`,
    );
  }
  if (!validateCron(c)) {
    if (impossibleDate(c)) throw new InvalidScheduleError(`"${c}" never fires: its day of the month never occurs in its month (e.g. 30 February).`);
    throw new InvalidScheduleError(`"${c}" is not a valid cron expression (e.g. "0 0 * * *" daily, "0 0 * * 1" weekly on Monday).`);
  }
  if (!isTimeZone(z)) throw new InvalidScheduleError(`"${z}" is not a known IANA time zone (e.g. Asia/Shanghai, UTC).`);
  try {
    // A valid expression that never fires (31 February) is useless as a schedule.
    CronExpressionParser.parse(c, { tz: z, currentDate: new Date() }).next();
  } catch (err) {
    throw new InvalidScheduleError(`"${c}" never runs in ${z}: ${(err as Error).message}`);
  }
  return { cron: c, tz: z };
}

/**
 * True when the expression is rejected only for pairing days and months that never meet
 * ("0 0 30 2 *"): each field is valid alone, but the cron libraries reject the combination.
 */
function impossibleDate(c: string): boolean {
  const f = c.split(' ');
  const day = f.length === 6 ? 3 : 2;
  const withField = (i: number, v: string) => f.map((x, j) => (j === i ? v : x)).join(' ');
  return validateCron(withField(day, '1')) && validateCron(withField(day + 1, '*'));
}

/** The next `count` run times strictly after `from`. */
export function nextRuns(s: Schedule, count: number, from: Date): Date[] {
  const it = CronExpressionParser.parse(s.cron, { tz: s.tz, currentDate: from });
  const out: Date[] = [];
  for (let i = 0; i < count; i++) {
    try {
      out.push(it.next().toDate());
    } catch {
      break;
    }
  }
  return out;
}

/**
 * The most recent scheduled instant at or before `at` (null when the schedule never ran before).
 * cron-parser's prev() is strict, so we ask from 1 ms later to include a slot equal to `at`.
 */
export function latestSlot(s: Schedule, at: Date): Date | null {
  try {
    return CronExpressionParser.parse(s.cron, { tz: s.tz, currentDate: new Date(at.getTime() + 1) }).prev().toDate();
  } catch {
    return null;
  }
}
