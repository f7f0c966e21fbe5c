/**
 * `text` (a log read as latin1) safe to show on a terminal: control
 * characters, DEL and bytes from 0x80 become `\xhh`, as Apache escapes them
 * in its own logs, so a line of a damaged or crafted log cannot move the
 * cursor, clear the screen or retitle the window of whoever reads the report.
 */
export function printableLogText(text: string): string {
  return text.replace(/[\x00-\x1f\x7f-\xff]/g, (char) => `\\x${char.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
