// ARB_LISTENERS is a comma-separated list; a unix path may itself hold a comma or a percent.
export function encodeList(items: readonly string[]): string {
  return items.map((s) => s.replaceAll('%', '%25').replaceAll(',', '%2C')).join(',');
}

export function decodeList(text: string): string[] {
  if (text === '') return [];
  return text.split(',').map((s) => s.replace(/%(25|2C)/gi, (m) => (m === '%25' ? '%' : ',')));
}

/** Parses `3,4,5` into descriptor numbers; `undefined` when any entry is not one. */
export function parseFdList(text: string): number[] | undefined {
  if (text.trim() === '') return [];
  const fds = text.split(',').map((s) => s.trim());
  if (!fds.every((s) => /^\d+$/.test(s))) return undefined;
  return fds.map(Number);
}
