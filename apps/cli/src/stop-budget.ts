import type { CompanionsInput, CompanionsSettings } from '@arb/companion';

/** How long a TERM may take: the shutdown delay, then the graceful drain. */
export interface StopBudget {
  shutdownDelay: number;
  gracefulTimeout: number;
}

/**
 * One warning per companion that cannot stop within the budget. Companions are stopped
 * when the drain begins (after the delay), as the workers are, so each has
 * `gracefulTimeout`; a longer `stopTimeout` makes a TERM outlast `shutdownDelay +
 * gracefulTimeout`, and an orchestrator sized on that (Kubernetes'
 * terminationGracePeriodSeconds) SIGKILLs the whole tree first. An explicit
 * `managerStopTimeout` is how long the master waits for the manager: checked the same way.
 * A derived one (slowest stopTimeout + managerShutdownBuffer) is not: the manager exits as
 * soon as its companions are gone, the buffer only covers a manager that does not.
 */
export function stopBudgetWarnings(
  input: CompanionsInput,
  settings: CompanionsSettings,
  budget: StopBudget,
): string[] {
  const { shutdownDelay: delay, gracefulTimeout: graceful } = budget;
  const total = delay + graceful;
  const spelled = `${total} s (shutdownDelay ${delay} + gracefulTimeout ${graceful}; companions stop after the delay)`;
  const lines: string[] = [];
  for (const c of settings.configs) {
    if (c.stopTimeout <= graceful) continue;
    lines.push(
      `Companion ${c.name}: stopTimeout ${c.stopTimeout} s does not fit the stop budget of ${spelled}: ` +
        `a TERM may take ${delay + c.stopTimeout} s; give it stopTimeout <= ${graceful} or raise gracefulTimeout`,
    );
  }
  const manager = input.managerStopTimeout;
  if (typeof manager === 'number' && manager > graceful) {
    lines.push(
      `Companion manager: managerStopTimeout ${manager} s does not fit the stop budget of ${spelled}: ` +
        `a TERM may take ${delay + manager} s; set it <= ${graceful} or raise gracefulTimeout`,
    );
  }
  return lines;
}
