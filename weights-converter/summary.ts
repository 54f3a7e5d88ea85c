/** The report `clipseg convert` prints. */
import { formatBytes } from '../src/io/progress.js';
import type { ConvertSummary } from './convert.js';

export function formatSummary(s: ConvertSummary): string {
  const lines = [
    `converted ${s.source} -> ${s.out} (${s.input === 'original' ? "the paper's release" : 'transformers keys'}, ${s.dtype})`,
    `  keys        ${s.keys}`,
    `  parameters  ${s.parameters.toLocaleString('en-US')}`,
    `  bytes       ${s.bytes} (${formatBytes(s.bytes)})`,
    `  sha256      ${s.sha256}`,
  ];
  if (s.dropped.length > 0) lines.push(`  dropped     ${s.dropped.length} non-weight tensors (${s.dropped.slice(0, 4).join(', ')}${s.dropped.length > 4 ? ', ...' : ''})`);
  if (s.processor.copied.length > 0) lines.push(`  copied      ${s.processor.copied.join(', ')}`);
  if (s.processor.generated.length > 0) lines.push(`  generated   ${s.processor.generated.join(', ')}`);
  return `${lines.join('\n')}\n`;
}
