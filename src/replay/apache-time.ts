const MONTHS: Readonly<Record<string, number>> = { Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11 };

const TIME = /^(\d{2})\/([A-Z][a-z]{2})\/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/;

/** Apache's `%t` without its brackets (`24/Nov/2026:11:00:05 +0100`) as milliseconds since the epoch; null when it is not one. */
export function parseApacheTime(text: string): number | null {
  const m = TIME.exec(text);
  if (m === null) return null;
  const month = MONTHS[m[2] as string];
  if (month === undefined) return null;
  const [day, hour, minute, second] = [Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6])];
  if (day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return null;
  const offsetMin = (Number(m[8]) * 60 + Number(m[9])) * (m[7] === '-' ? -1 : 1);
  return Date.UTC(Number(m[3]), month, day, hour, minute, second) - offsetMin * 60_000;
}

/** Undoes Apache's log escaping: `\"`, `\\` and `\xhh` (control and non-ASCII bytes), back to one character per byte as Node's `req.url` has them. */
export function unescapeApache(text: string): string {
  if (!text.includes('\\')) return text;
  return text.replace(/\\(x[0-9a-fA-F]{2}|.)/g, (_, escape: string) => (escape.length === 3 ? String.fromCharCode(Number.parseInt(escape.slice(1), 16)) : escape === 'n' ? '\n' : escape === 't' ? '\t' : escape));
}
