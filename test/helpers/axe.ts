/**
 * Accessibility of a dashboard page, checked by axe-core (WCAG 2.1 A and AA rules) in the
 * real browser: the bar is no serious or critical violation; a page may hold itself
 * to a stricter one.
 */
import { AxeBuilder } from '@axe-core/playwright';
import type { Page } from 'playwright-core';

const IMPACTS = ['minor', 'moderate', 'serious', 'critical'] as const;
type Impact = (typeof IMPACTS)[number];

/** The violations of at least this impact on the page as it is now, in words (empty: none). */
export async function violations(page: Page, atLeast: Impact = 'serious'): Promise<string[]> {
  const { violations: found } = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  const least = IMPACTS.indexOf(atLeast);
  return found
    .filter((v) => IMPACTS.indexOf(v.impact ?? 'minor') >= least)
    .map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
}

/** The serious and critical violations (the bar). */
export function seriousViolations(page: Page): Promise<string[]> {
  return violations(page, 'serious');
}
