/**
 * Secrets Manager rotation schedules as the API reference describes them
 * (RotationRulesType, https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_RotationRulesType.html,
 * and "Schedule expressions in Secrets Manager rotation" in the User Guide):
 *
 *   - `rate(N hours)` / `rate(N days)`: "If you use a rate() expression, the rotation window
 *     starts at midnight. For a rate in hours, the default rotation window closes after one
 *     hour. For a rate in days, the default rotation window closes at the end of the day."
 *   - `cron(minutes hours day-of-month month day-of-week year)`, UTC: "For a cron expression
 *     that represents a schedule in hours, the default rotation window closes after one
 *     hour ... in days, the default rotation window closes at the end of the day."
 *   - `Duration` ("3h"): "Secrets Manager rotates your secret at any time during this
 *     window. The window must not extend into the next rotation window or the next UTC day."
 *   - "You can rotate a secret as often as every four hours."
 *
 * So a rotation can land anywhere in its window, and two consecutive scheduled rotations
 * can be as close as the gap between one window's end and the next window's start: with
 * `rate(1 day)`, 23:59 and 00:01. `worstCaseRotationGapSeconds` works that out.
 *
 * Pure: no aws-cdk-lib, safe for lib/ and the test model. Cron support: numbers, `*`, `?`,
 * lists, ranges, steps and month/day names; `L`, `W` and `#` are refused with the reason.
 */

const HOUR_S = 3600;
const DAY_S = 24 * HOUR_S;
const MIN_INTERVAL_S = 4 * HOUR_S;

export interface CronSchedule {
  readonly minutes: readonly number[];
  readonly hours: readonly number[];
  /** undefined for `?` */
  readonly daysOfMonth?: ReadonlySet<number>;
  readonly months: ReadonlySet<number>;
  /** 1 = Sunday ... 7 = Saturday (AWS numbering); undefined for `?` */
  readonly daysOfWeek?: ReadonlySet<number>;
  /** undefined for `*` */
  readonly years?: ReadonlySet<number>;
}

export type ParsedSchedule =
  | { readonly kind: 'rate'; readonly unit: 'hours' | 'days'; readonly amount: number }
  | { readonly kind: 'cron'; readonly cron: CronSchedule };

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

/** Parses `rate(...)` or `cron(...)`; the error names the expression and what Secrets Manager accepts. */
export function parseScheduleExpression(expression: string): ParsedSchedule {
  const rate = /^rate\((\d+) (hours?|days?)\)$/.exec(expression.trim());
  if (rate) {
    const amount = Number(rate[1]);
    const unit = rate[2].startsWith('hour') ? 'hours' : 'days';
    if (amount < 1 || (unit === 'hours' && amount < 4)) {
      throw new Error(`Schedule expression "${expression}" rotates more often than Secrets Manager allows: at most every 4 hours (for example "rate(4 hours)").`);
    }
    return { kind: 'rate', unit, amount };
  }
  const cron = /^cron\((.+)\)$/.exec(expression.trim());
  if (!cron) {
    throw new Error(`Schedule expression "${expression}" is neither rate(...) nor cron(...): write for example "rate(7 days)" or "cron(0 4 ? * MON *)".`);
  }
  const fields = cron[1].trim().split(/\s+/);
  if (fields.length !== 6) {
    throw new Error(`Schedule expression "${expression}" has ${fields.length} fields; cron() takes six: minutes hours day-of-month month day-of-week year.`);
  }
  const [minuteField, hourField, domField, monthField, dowField, yearField] = fields;
  if ((domField === '?') === (dowField === '?')) {
    throw new Error(`Schedule expression "${expression}": exactly one of day-of-month and day-of-week must be "?".`);
  }
  const field = (text: string, name: string, min: number, max: number, names?: string[]) => cronField(expression, text, name, min, max, names);
  return {
    kind: 'cron',
    cron: {
      minutes: [...field(minuteField, 'minutes', 0, 59)].sort((a, b) => a - b),
      hours: [...field(hourField, 'hours', 0, 23)].sort((a, b) => a - b),
      daysOfMonth: domField === '?' ? undefined : field(domField, 'day-of-month', 1, 31),
      months: field(monthField, 'month', 1, 12, MONTHS),
      daysOfWeek: dowField === '?' ? undefined : field(dowField, 'day-of-week', 1, 7, DAYS),
      years: yearField === '*' ? undefined : field(yearField, 'year', 1970, 2199),
    },
  };
}

function cronField(expression: string, text: string, name: string, min: number, max: number, names?: string[]): Set<number> {
  const bad = (why: string) => new Error(`Schedule expression "${expression}": the ${name} field "${text}" ${why}.`);
  if (/[LW#]/.test(text.replace(/[A-Z]{3}/g, (m) => (names?.includes(m) ? '' : m)))) throw bad('uses L, W or #, which this check does not evaluate: use plain values, ranges and steps');
  const value = (token: string): number => {
    const index = names?.indexOf(token.toUpperCase()) ?? -1;
    const n = index >= 0 ? index + 1 : Number(token);
    if (!Number.isInteger(n) || n < min || n > max) throw bad(`has ${JSON.stringify(token)}, outside ${min} to ${max}`);
    return n;
  };
  const result = new Set<number>();
  for (const part of text.split(',')) {
    const [range, stepText] = part.split('/');
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1) throw bad(`has the step ${JSON.stringify(stepText)}`);
    let from: number;
    let to: number;
    if (range === '*' || range === '?') {
      [from, to] = [min, max];
    } else if (range.includes('-')) {
      const [a, b] = range.split('-');
      [from, to] = [value(a), value(b)];
      if (from > to) throw bad(`has the backwards range ${range}`);
    } else {
      from = value(range);
      to = stepText === undefined ? from : max;
    }
    for (let n = from; n <= to; n += step) result.add(n);
  }
  return result;
}

/** "3h" -> seconds; the window is 1 to 24 hours. */
export function parseWindowDuration(duration: string): number {
  const match = /^(\d+)h$/.exec(duration);
  const hours = match ? Number(match[1]) : NaN;
  if (!(hours >= 1 && hours <= 24)) throw new Error(`Rotation window "${duration}" is not a number of hours from 1h to 24h (for example "3h").`);
  return hours * HOUR_S;
}

/** Whether the schedule is "in hours" (several windows a day) or "in days", for the default window. */
function inHours(schedule: ParsedSchedule): boolean {
  return schedule.kind === 'rate' ? schedule.unit === 'hours' : schedule.cron.hours.length > 1;
}

/** The window length in seconds: the given Duration, or the documented default. */
export function windowLengthSeconds(schedule: ParsedSchedule, duration?: string): number {
  if (duration !== undefined) return parseWindowDuration(duration);
  return inHours(schedule) ? HOUR_S : DAY_S;
}

/** The first cron fire time strictly after `after` (minute precision), within ten years. */
export function nextCronFire(cron: CronSchedule, after: Date): Date {
  const start = Math.floor(after.getTime() / 60_000) * 60_000 + 60_000;
  const day = new Date(start);
  day.setUTCHours(0, 0, 0, 0);
  for (let d = 0; d < 3660; d += 1, day.setUTCDate(day.getUTCDate() + 1)) {
    if (!cronMatchesDay(cron, day)) continue;
    for (const hour of cron.hours) {
      for (const minute of cron.minutes) {
        const at = day.getTime() + hour * HOUR_S * 1000 + minute * 60_000;
        if (at >= start) return new Date(at);
      }
    }
  }
  throw new Error('The cron schedule has no fire time in the next ten years.');
}

function cronMatchesDay(cron: CronSchedule, day: Date): boolean {
  if (cron.years && !cron.years.has(day.getUTCFullYear())) return false;
  if (!cron.months.has(day.getUTCMonth() + 1)) return false;
  if (cron.daysOfMonth && !cron.daysOfMonth.has(day.getUTCDate())) return false;
  if (cron.daysOfWeek && !cron.daysOfWeek.has(day.getUTCDay() + 1)) return false;
  return true;
}

/**
 * The shortest time between two consecutive scheduled rotations, seconds: one at the very
 * end of a window, the next at the very start of the following window. Throws when the
 * schedule breaks a rule Secrets Manager enforces (window into the next day or window,
 * rotations closer than 4 hours).
 */
export function worstCaseRotationGapSeconds(expression: string, duration?: string): number {
  const schedule = parseScheduleExpression(expression);
  const window = windowLengthSeconds(schedule, duration);
  if (schedule.kind === 'rate') {
    const period = schedule.amount * (schedule.unit === 'hours' ? HOUR_S : DAY_S);
    if (window > period) throw new Error(`Rotation window ${duration} is longer than the schedule "${expression}": it would run into the next window.`);
    return period - window;
  }
  // Two years of fire times cover every pattern of months, weekdays and leap days that matters here.
  let previous = nextCronFire(schedule.cron, new Date(Date.UTC(2025, 0, 1)));
  let worst = Number.POSITIVE_INFINITY;
  const horizon = Date.UTC(2027, 0, 1);
  while (previous.getTime() < horizon) {
    const next = nextCronFire(schedule.cron, previous);
    const spacing = (next.getTime() - previous.getTime()) / 1000;
    if (spacing < MIN_INTERVAL_S) throw new Error(`Schedule expression "${expression}" fires ${spacing / 60} minutes apart; Secrets Manager rotates at most every 4 hours.`);
    const secondsLeftInDay = DAY_S - ((previous.getTime() / 1000) % DAY_S);
    if (window > secondsLeftInDay) throw new Error(`Rotation window ${duration ?? `${window / HOUR_S}h`} of "${expression}" runs past the end of the UTC day; Secrets Manager refuses that: shorten the window or start earlier.`);
    if (window > spacing) throw new Error(`Rotation window ${duration ?? `${window / HOUR_S}h`} of "${expression}" runs into the next window.`);
    worst = Math.min(worst, spacing - window);
    previous = next;
  }
  return worst;
}

/** The rotation window that follows a rotation at `last`, per the schedule (see the header). */
export function nextRotationWindow(expression: string, duration: string | undefined, last: Date): { start: Date; end: Date } {
  const schedule = parseScheduleExpression(expression);
  const window = windowLengthSeconds(schedule, duration) * 1000;
  if (schedule.kind === 'rate') {
    if (schedule.unit === 'days') {
      const day = new Date(last);
      day.setUTCHours(0, 0, 0, 0);
      const start = day.getTime() + schedule.amount * DAY_S * 1000;
      return { start: new Date(start), end: new Date(start + window) };
    }
    // Windows in hours start on the hour, counted from the last rotation.
    const start = Math.floor(last.getTime() / (HOUR_S * 1000)) * HOUR_S * 1000 + schedule.amount * HOUR_S * 1000;
    return { start: new Date(start), end: new Date(start + window) };
  }
  const start = nextCronFire(schedule.cron, last);
  return { start, end: new Date(start.getTime() + window) };
}
