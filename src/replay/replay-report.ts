import type { ReplayResult } from './replay-session.js';

/** How the input went: lines read and what could not be used. */
export interface ReplayInput {
  readonly lines: number;
  readonly malformed: number;
  /** The first few malformed lines, as `FILE:LINE: text`. */
  readonly malformedExamples: readonly string[];
  /** Lines older than the reordering window allowed (decided late, not dropped). */
  readonly late: number;
}

const BAR_WIDTH = 40;
const TOP_OFFENDERS = 10;

/** Renders a replay for a person: totals, what reached Apache, the timeline per minute, the top offenders. */
export function renderReplayReport(result: ReplayResult, input: ReplayInput): string {
  const out: string[] = [];
  const d = result.decisions;
  const total = d.allow + d.limit + d.block + d.reject + d.ban;
  out.push(`portcullis replay: ${input.lines} lines, ${total} requests decided${input.malformed > 0 ? `, ${input.malformed} malformed lines skipped` : ''}${result.unusableClients > 0 ? `, ${result.unusableClients} with no client address` : ''}${input.late > 0 ? `, ${input.late} later than the reordering window` : ''}`);
  for (const example of input.malformedExamples) out.push(`  malformed: ${example}`);
  out.push('');
  out.push(`decisions: allowed ${d.allow}, limited ${d.limit}, blocked ${d.block}, rejected ${d.reject}, refused while banned ${d.ban}`);
  out.push(`reached Apache: ${d.allow} of ${total} requests (${percent(d.allow, total)}); busiest second ${result.reachedApache.peakPerSecond}/s, against ${result.loggedPeakPerSecond}/s as logged`);
  out.push('');
  out.push('per minute (UTC)      requests  refused  bans');
  const busiest = Math.max(1, ...result.timeline.map((minute) => minute.requests));
  for (const minute of result.timeline) {
    const bar = '#'.repeat(Math.round((minute.requests / busiest) * BAR_WIDTH));
    const refusedBar = bar.slice(0, Math.round((minute.refused / busiest) * BAR_WIDTH)).replaceAll('#', 'x');
    out.push(`${new Date(minute.minuteMs).toISOString().slice(0, 16).replace('T', ' ')}  ${String(minute.requests).padStart(8)} ${String(minute.refused).padStart(8)} ${String(minute.bans).padStart(5)}  ${refusedBar}${bar.slice(refusedBar.length)}`);
  }
  out.push('  (x refused, # reached Apache)');
  out.push('');
  const top = result.offenders.slice(0, TOP_OFFENDERS);
  if (top.length === 0) {
    out.push('nobody was refused');
  } else {
    out.push('top offenders       refused  first refused (UTC)  banned at (UTC)      for     first rule');
    for (const offender of top) {
      const banned = offender.bannedAtMs === null ? 'never'.padEnd(19) : time(offender.bannedAtMs);
      const length = offender.banMs === null ? '' : duration(offender.banMs);
      out.push(`${offender.target.padEnd(19)} ${String(offender.refused).padStart(7)}  ${time(offender.firstRefusedMs)}  ${banned}  ${length.padEnd(7)} ${offender.firstRule}`);
    }
  }
  return `${out.join('\n')}\n`;
}

function time(epochMs: number): string {
  return new Date(epochMs).toISOString().slice(0, 19).replace('T', ' ');
}

function percent(part: number, whole: number): string {
  return whole === 0 ? '0 %' : `${((part / whole) * 100).toFixed(1)} %`;
}

function duration(ms: number): string {
  if (ms >= 86_400_000) return `${(ms / 86_400_000).toFixed(ms % 86_400_000 === 0 ? 0 : 1)}d`;
  if (ms >= 3_600_000) return `${(ms / 3_600_000).toFixed(ms % 3_600_000 === 0 ? 0 : 1)}h`;
  return `${Math.round(ms / 60_000)}m`;
}
