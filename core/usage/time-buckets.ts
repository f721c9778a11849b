// Calendar arithmetic for usage buckets: UTC hours, and days in the operator's time zone
// ("today" on a chart means the operator's today, not UTC's).

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;

export function hourIndex(at: Date): number {
  return Math.floor(at.getTime() / HOUR_MS);
}

const dayFormatters = new Map<string, Intl.DateTimeFormat>();
const partFormatters = new Map<string, Intl.DateTimeFormat>();

/** The calendar day of `at` in `tz`, as YYYY-MM-DD. */
export function dayKey(at: Date, tz: string): string {
  let f = dayFormatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' });
    dayFormatters.set(tz, f);
  }
  return f.format(at);
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

/** The instant local midnight of `day` in `tz` begins. */
export function dayStart(day: string, tz: string): Date {
  const [y, m, d] = day.split('-').map(Number);
  const guess = Date.UTC(y, m - 1, d);
  let start = guess - tzOffset(guess, tz);
  start = guess - tzOffset(start, tz); // a second pass settles days where the offset changes (DST)
  return new Date(start);
}
