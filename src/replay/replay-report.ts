import type { ClientOutcome, OutcomeDifference } from './replay-comparison.js';
import type { ReplayResult } from './replay-session.js';
import { printableLogText } from './printable-log-text.js';

/** How the input went: lines read and what could not be used. */
export interface ReplayInput {
  readonly lines: number;
  readonly malformed: number;
  /** The first few malformed lines, as `FILE:LINE: text`. */
  readonly malformedExamples: readonly string[];
  /** Lines older than the reordering window allowed (decided late, not dropped). */
  readonly late: number;
  /** `--format` as given: auto, a name, or a LogFormat string. */
  readonly format: string;
}

/** A second policy replayed over the same lines (`--against`). */
export interface ReplayComparison {
  readonly file: string;
  readonly result: ReplayResult;
  readonly differences: readonly OutcomeDifference[];
}

const BAR_WIDTH = 40;
const TOP_OFFENDERS = 10;
const TOP_COLLATERAL = 20;
const TOP_DIFFERENCES = 20;

/** Renders a replay for a person: totals, what reached Apache, the timeline per minute, the top offenders, the collateral, and the comparison with `--against`. */
export function renderReplayReport(result: ReplayResult, input: ReplayInput, comparison?: ReplayComparison): string {
  const out: string[] = [];
  const d = result.decisions;
  const total = d.allow + d.limit + d.block + d.reject + d.ban;
  out.push(`portcullis replay: ${input.lines} lines, ${total} requests decided${input.malformed > 0 ? `, ${input.malformed} malformed lines skipped` : ''}${result.unusableClients > 0 ? `, ${result.unusableClients} with no client address` : ''}${input.late > 0 ? `, ${input.late} later than the reordering window` : ''}`);
  for (const example of input.malformedExamples) out.push(`  malformed: ${example}`);
  out.push('');
  const sites = Object.entries(result.bySite);
  if (sites.length > 1 || (sites.length === 1 && sites[0]?.[0] !== '_default_')) out.push(`by site: ${sites.map(([site, count]) => `${site} ${count}`).join(', ')}`);
  if (result.withoutHost > 0) out.push(`note: the policy has sites, but ${result.withoutHost} lines name no host (use vhost_combined, or %v/%V in --format): the default site decided them`);
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
  out.push('');
  renderCollateral(result, out);
  if (comparison !== undefined) {
    out.push('');
    renderComparison(comparison, out);
  }
  return `${out.join('\n')}\n`;
}

function renderCollateral(result: ReplayResult, out: string[]): void {
  if (result.collateral.length === 0) {
    out.push('collateral: no client that looks like an ordinary visitor was refused without being banned');
    return;
  }
  out.push(`collateral: ${result.collateral.length} client${result.collateral.length === 1 ? '' : 's'} that look like ordinary visitors (mostly GET, served, a browser, spread over time) refused, never banned: false-positive suspects`);
  out.push('client              requests  refused  first refused (UTC)  rule                 user agent');
  for (const suspect of result.collateral.slice(0, TOP_COLLATERAL)) {
    const rule = suspect.site === null ? suspect.rule : `${suspect.rule} on ${suspect.site}`;
    out.push(`${suspect.client.padEnd(19)} ${String(suspect.requests).padStart(8)} ${String(suspect.refused).padStart(8)}  ${time(suspect.firstRefusedMs)}  ${rule.padEnd(20)} ${printableLogText((suspect.userAgent ?? '-').slice(0, 40))}`);
  }
  if (result.collateral.length > TOP_COLLATERAL) out.push(`  … and ${result.collateral.length - TOP_COLLATERAL} more (--json lists all)`);
}

function renderComparison(comparison: ReplayComparison, out: string[]): void {
  const other = comparison.result.decisions;
  out.push(`against ${comparison.file}: reached Apache ${other.allow} requests, busiest second ${comparison.result.reachedApache.peakPerSecond}/s; ${comparison.result.collateral.length} collateral`);
  if (comparison.differences.length === 0) {
    out.push('  every client has the same outcome (banned, refused or untouched) under both policies');
    return;
  }
  out.push(`  ${comparison.differences.length} client${comparison.differences.length === 1 ? '' : 's'} with another outcome:`);
  out.push('  client              this policy                          against');
  for (const difference of comparison.differences.slice(0, TOP_DIFFERENCES)) {
    out.push(`  ${difference.target.padEnd(19)} ${describeOutcome(difference.policy).padEnd(36)} ${describeOutcome(difference.against)}`);
  }
  if (comparison.differences.length > TOP_DIFFERENCES) out.push(`  … and ${comparison.differences.length - TOP_DIFFERENCES} more (--json lists all)`);
}

function describeOutcome(outcome: ClientOutcome): string {
  if (outcome.kind === 'untouched') return 'untouched';
  if (outcome.kind === 'refused') return `refused ${outcome.refused}×`;
  return `banned ${time(outcome.bannedAtMs as number).slice(11)} for ${duration(outcome.banMs as number)}, refused ${outcome.refused}×`;
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
