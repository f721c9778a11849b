// Calendar arithmetic for usage buckets: UTC hours, and days in the operator's time zone
// ("today" on a chart means the operator's today, not UTC's).

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;

export function hourIndex(at: Date): number {
  return Math.floor(at.getTime() / HOUR_MS);
}

const dayFormatters = new Map<string, Intl.DateTimeFormat>();
const partFormatters = new Map<string, Intl.DateTimeFormat>();

/** The last day looked up per time zone, as an interval, so the hot path (one usage record per
 * message) skips Intl formatting while the day lasts. */
const lastDay = new Map<string, { day: string; start: number; end: number }>();

function dayFormatter(tz: string): Intl.DateTimeFormat {
  let f = dayFormatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' });
    dayFormatters.set(tz, f);
  }
  return f;
}

/** The calendar day of `at` in `tz`, as YYYY-MM-DD. */
export function dayKey(at: Date, tz: string): string {
  const t = at.getTime();
  const last = lastDay.get(tz);
  if (last && t >= last.start && t < last.end) return last.day;
  const f = dayFormatter(tz);
  const day = f.format(at);
  if (Number.isNaN(t)) return day;
  const start = dayStart(day, tz).getTime();
  const end = dayStart(addDays(day, 1), tz).getTime();
  // Cached only when Intl agrees on both ends (days are contiguous, so on everything between):
  // a zone whose midnight is skipped by a clock change simply is not cached that day.
  if (start <= t && t < end && f.format(start) === day && f.format(end - 1) === day && f.format(start - 1) !== day && f.format(end) !== day) {
    lastDay.set(tz, { day, start, end });
  }
  return day;
}

/** `day` shifted by `delta` calendar days (pure date arithmetic, no time zone involved). */
export function addDays(day: string, delta: number): string {
  const [y, m, d] = day.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, d + delta)).toISOString().slice(0, 10);
}

/** Offset of `tz` from UTC at instant `t`, in ms (Asia/Shanghai: +8 h). */
function tzOffset(t: number, tz: string): number {
  let f = partFormatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
    });
    partFormatters.set(tz, f);
  }
  const p = Object.fromEntries(f.formatToParts(new Date(t)).map((x) => [x.type, x.value]));
  const local = Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day), Number(p.hour), Number(p.minute), Number(p.second));
  return local - Math.floor(t / 1000) * 1000;
}

const dayStarts = new Map<string, number>();

/** The instant local midnight of `day` in `tz` begins. */
export function dayStart(day: string, tz: string): Date {
  // Memoised: a 90-day chart asks for 90 of them per request, each two Intl formatToParts calls.
  const id = `${tz}|${day}`;
  let start = dayStarts.get(id);
  if (start === undefined) {
    start = computeDayStart(day, tz);
    if (dayStarts.size >= 4096) dayStarts.clear();
    dayStarts.set(id, start);
  }
  return new Date(start);
}

function computeDayStart(day: string, tz: string): number {
  const [y, m, d] = day.split('-').map(Number);
  const guess = Date.UTC(y, m - 1, d);
  let start = guess - tzOffset(guess, tz);
  start = guess - tzOffset(start, tz); // a second pass settles days where the offset changes (DST)
  return start;
}
