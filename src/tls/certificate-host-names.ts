import type { X509Certificate } from 'node:crypto';

/**
 * The host names a certificate covers, as a browser reads them (RFC 6125
 * §6.4.4): its subjectAltName DNS entries, or, only when it has none, the
 * subject's common names. A CN next to a SAN is ignored, as browsers ignore it.
 */
export function certificateHostNames(certificate: X509Certificate): string[] {
  const san = typedEntries(certificate.subjectAltName ?? '', ', ', ':')
    .filter(([type]) => type === 'DNS')
    .map(([, value]) => value);
  if (san.length > 0) return san;
  return typedEntries(certificate.subject, '\n', '=')
    .filter(([type]) => type === 'CN')
    .map(([, value]) => value);
}

/**
 * Splits Node's rendering of a SAN list (`DNS:a.test, IP Address:192.0.2.1`)
 * or a subject (`C=DE\nCN=a.test`) into [type, value] pairs. Since Node
 * 17.3.1 a value with a separator or quote in it is written as a JSON string
 * (CVE-2021-44532), so a name can never smuggle in a second entry.
 */
function typedEntries(text: string, separator: string, assign: string): [string, string][] {
  const entries: [string, string][] = [];
  let rest = text;
  while (rest !== '') {
    const at = rest.indexOf(assign);
    if (at < 0) break;
    const type = rest.slice(0, at);
    rest = rest.slice(at + assign.length);
    let value: string;
    if (rest.startsWith('"')) {
      const quoted = /^"(?:[^"\\]|\\.)*"/.exec(rest)?.[0] ?? rest;
      try {
        value = JSON.parse(quoted) as string;
      } catch {
        value = quoted;
      }
      rest = rest.slice(quoted.length);
      if (rest.startsWith(separator)) rest = rest.slice(separator.length);
    } else {
      const end = rest.indexOf(separator);
      value = end < 0 ? rest : rest.slice(0, end);
      rest = end < 0 ? '' : rest.slice(end + separator.length);
    }
    entries.push([type, value]);
  }
  return entries;
}
