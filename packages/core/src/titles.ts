/** Process title of the arb master for an app name, as `ps` shows it. */
export function masterTitle(name: string): string {
  return `arb: master [${name}]`;
}

/** Process title of an arb worker for an app name. */
export function workerTitle(name: string): string {
  return `arb: worker [${name}]`;
}
