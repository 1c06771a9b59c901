/**
 * The admin pages in a real browser (Debian's Chromium, playwright-core) against the service
 * with authentication on and a real webhook receiver on loopback (listed in
 * WEBHOOK_ALLOWED_HOSTS): a token created in the page works until it is revoked there; a
 * webhook registered in the page receives a run's event, shown DELIVERED in its log, and a
 * redelivery; a private address is refused at the URL field; the audit log shows those
 * changes, filtered by actor and action and paged back; an operator reads the role message.
 *
 * The tests run in order and build on each other (the audit log reads what the first two did).
 * Set DASHBOARD_SCREENSHOTS=1 to write docs/screenshots/admin-*.png.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken } from '../../src/auth/tokens.ts';
import { graphql } from '../../src/generated/gql/index.ts';
import { seriousViolations } from '../helpers/axe.ts';
import { launchChromium, recordRequests, screenshot, staysOnThisMachine } from '../helpers/browser.ts';
import { StartPipeline } from '../helpers/operations.ts';
import { eventually, seedGraph } from '../helpers/seed.ts';
import { httpClient, startTestApp, type GraphQLClient, type TestApp } from '../helpers/test-app.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.ts';

const Viewer = graphql(`query AdminPagesViewer { viewer { name role } }`);
const TokenList = graphql(`query AdminPagesTokens { tokens { name lastUsedAt revokedAt } }`);
const HookList = graphql(`query AdminPagesWebhooks { webhooks { id url events hasSecret description enabled } }`);
const HookLog = graphql(`query AdminPagesWebhookLog($id: Int!) { webhook(id: $id) { deliveries { id deliveryId state } } }`);
const MakeToken = graphql(`
  mutation AdminPagesCreateToken($name: String!, $role: Role!) {
    createToken(name: $name, role: $role) { __typename }
  }
`);

const SECRET = 'a-signing-secret-of-some-length';

let t: TestApp;
let browser: Browser | undefined;
let receiver: WebhookReceiver;
/** The browser's admin ("alice"), the API's admin that seeds ("seeder"), an operator ("bob"). */
let alice = '';
let bob = '';
let seeder: GraphQLClient;
let root = '';

beforeAll(async () => {
  browser = await launchChromium('admin pages');
  t = await startTestApp({ env: { AUTH: 'on', WEBHOOK_ALLOWED_HOSTS: '127.0.0.1', WEBHOOK_RETRY_BASE_MS: '50' } });
  receiver = await startWebhookReceiver();
  alice = (await createToken(t.app.store.db, { name: 'alice', role: 'admin' })).secret;
  bob = (await createToken(t.app.store.db, { name: 'bob', role: 'operator' })).secret;
  seeder = httpClient(t.url, { authorization: `Bearer ${(await createToken(t.app.store.db, { name: 'seeder', role: 'admin' })).secret}` });
  root = t.url.replace(/\/graphql$/, '');
});
afterAll(async () => {
  await browser?.close();
  await t?.stop();
  await receiver?.close();
});

interface Session {
  page: Page;
  context: BrowserContext;
  /** Asserts what every page must: no script error, nothing left the machine. */
  finish(): Promise<void>;
}

async function signIn(secret: string): Promise<Session> {
  const context = await browser!.newContext({ viewport: { width: 1280, height: 800 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: root });
  const recorded = await recordRequests(context);
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('console', (message) => message.type() === 'error' && problems.push(message.text()));
  await page.goto(`${root}/`);
  await page.getByLabel('API token').fill(secret);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Pages' }).waitFor();
  return {
    page,
    context,
    async finish() {
      const seen = await Promise.all(recorded.seen);
      expect([...recorded.refused, ...seen.map((s) => s.url).filter((url) => !staysOnThisMachine(url))]).toEqual([]);
      expect(problems).toEqual([]);
      await context.close();
    },
  };
}

/** No serious or critical accessibility violation on the page as it is now. */
async function expectAccessible(page: Page) {
  expect(await seriousViolations(page)).toEqual([]);
}

/** The error a form control is described by (aria-describedby), as the user reads it. */
async function errorAt(page: Page, control: ReturnType<Page['getByLabel']>) {
  expect(await control.getAttribute('aria-invalid')).toBe('true');
  const ids = (await control.getAttribute('aria-describedby'))!.split(' ');
  return page.locator(`[id="${ids[0]}"]`).innerText();
}

describe('the admin pages', () => {
  let webhookId = 0;

  it('tokens: creates one whose secret is shown once and works, then revokes it and it is refused', { timeout: 120_000 }, async () => {
    const { page, finish } = await signIn(alice);
    await page.getByRole('link', { name: 'Tokens' }).click();
    await page.getByRole('heading', { name: 'API tokens' }).waitFor();
    await page.getByRole('row', { name: /bob/ }).waitFor();

    // A typed error lands at its field, in words.
    const name = page.getByLabel('Name');
    await name.fill('   ');
    await page.getByRole('button', { name: 'Create token' }).click();
    await page.locator('#token-name-error').waitFor();
    expect(await errorAt(page, name)).toBe('name must not be empty.');

    await name.fill('ci-nightly');
    await page.getByLabel('Role').selectOption('operator');
    await page.getByRole('button', { name: 'Create token' }).click();
    await page.getByRole('heading', { name: 'Token ci-nightly (operator) created' }).waitFor();
    expect(await page.locator('#secret-note').innerText()).toMatch(/Store the secret now: it is shown only this once/);
    const secret = await page.getByLabel('Secret', { exact: true }).inputValue();
    expect(secret).toMatch(/^dp_/);
    await page.getByRole('button', { name: 'Copy' }).click();
    await page.getByText('Copied to the clipboard.').waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(secret);
    await expectAccessible(page);
    await screenshot(page, 'admin-tokens', { fromTop: true });

    const nightly = httpClient(t.url, { authorization: `Bearer ${secret}` });
    expect((await nightly.request(Viewer)).viewer).toEqual({ name: 'ci-nightly', role: 'operator' });
    // The use is recorded by the service on its own time; wait for it before the page shows it.
    await eventually(async () => (await seeder.request(TokenList)).tokens.find((tk) => tk.name === 'ci-nightly' && tk.lastUsedAt !== null));

    await page.getByRole('button', { name: 'I have stored it' }).click();
    const row = page.getByRole('row', { name: /ci-nightly/ });
    await row.waitFor();
    expect(await page.content()).not.toContain(secret);
    expect(await row.innerText()).toContain(secret.slice(0, 8));

    await row.getByRole('button', { name: 'Revoke ci-nightly' }).click();
    expect(await row.getByRole('group').innerText()).toMatch(/Revoke ci-nightly\? Requests with it are refused at once/);
    await row.getByRole('button', { name: 'Revoke', exact: true }).click();
    await page.locator('tr[data-state="revoked"]', { hasText: 'ci-nightly' }).waitFor();
    // Kept, marked, with when it was last used (it was used above).
    expect(await row.innerText()).toMatch(/Revoked/);
    expect(await row.locator('td').nth(3).innerText()).not.toBe('never');
    expect(await row.getByRole('button').count()).toBe(0);

    const refused = await nightly.execute(Viewer);
    expect(refused.errors?.[0]).toMatchObject({ extensions: { code: 'UNAUTHENTICATED' } });
    expect(refused.errors?.[0]!.message).toContain('revoked');
    await finish();
  });

  it('webhooks: a private address is refused at the URL field; one to the receiver gets a run event, DELIVERED, and a redelivery', { timeout: 120_000 }, async () => {
    const { page, finish } = await signIn(alice);
    await page.getByRole('link', { name: 'Webhooks' }).click();
    await page.getByRole('heading', { name: 'Webhooks', exact: true }).waitFor();
    await page.getByText('No webhooks yet').waitFor();

    const url = page.getByLabel('URL');
    await url.fill('http://10.1.2.3/hook');
    await page.getByRole('checkbox', { name: /pipeline:finished/ }).check();
    await page.getByRole('button', { name: 'Register webhook' }).click();
    await page.locator('#new-hook-url-error').waitFor();
    const refusedAt = await errorAt(page, url);
    expect(refusedAt).toMatch(/^10\.1\.2\.3 is a private-network address/);
    expect(refusedAt).toMatch(/WEBHOOK_ALLOWED_HOSTS/);
    expect((await seeder.request(HookList)).webhooks).toEqual([]);

    await url.fill(receiver.url);
    const secret = page.getByLabel('Signing secret (optional)');
    await secret.fill('short');
    await page.getByRole('button', { name: 'Register webhook' }).click();
    await page.locator('#new-hook-secret-error').waitFor();
    expect(await errorAt(page, secret)).toMatch(/16 to 256/);
    expect(await url.getAttribute('aria-invalid')).toBeNull();

    await secret.fill(SECRET);
    await page.getByLabel('Description (optional)').fill('chat');
    await page.getByRole('button', { name: 'Register webhook' }).click();
    await page.getByRole('status').filter({ hasText: 'Webhook registered.' }).waitFor();
    const link = page.getByRole('link', { name: receiver.url });
    await link.waitFor();
    const [hook] = (await seeder.request(HookList)).webhooks;
    expect(hook).toMatchObject({ url: receiver.url, events: ['pipeline:finished'], hasSecret: true, description: 'chat', enabled: true });
    webhookId = hook!.id;
    // The form starts afresh for the next one.
    expect(await url.inputValue()).toBe('');
    await expectAccessible(page);
    await screenshot(page, 'admin-webhooks', { fromTop: true });

    await link.click();
    await page.getByRole('heading', { name: `Webhook to ${receiver.url}` }).waitFor();
    await page.getByText('No deliveries yet').waitFor();

    // A run finishes: its event is delivered (waited for through the API, then shown).
    const { graphId } = await seedGraph(seeder, { name: 'hooked', vertices: { only: { script: 'echo hi' } } });
    const { startPipeline } = await seeder.request(StartPipeline, { graphId });
    if (startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(startPipeline));
    await eventually(async () => (await seeder.request(HookLog, { id: webhookId })).webhook?.deliveries.find((d) => d.state === 'DELIVERED'));
    await page.getByRole('button', { name: 'Refresh' }).click();
    const delivered = page.locator('tr[data-state="DELIVERED"]');
    await delivered.first().waitFor();
    const first = delivered.first();
    expect(await first.innerText()).toContain('pipeline:finished');
    expect(await first.innerText()).toContain('HTTP 200');
    expect(await first.getByRole('link', { name: startPipeline.name }).getAttribute('href')).toBe(`/runs/${startPipeline.id}`);

    // Redeliver: a new delivery, sent at once; the log follows it until it is delivered.
    const firstId = (await first.getAttribute('data-testid'))!.replace('delivery-', '');
    await page.getByRole('button', { name: `Redeliver delivery ${firstId}` }).click();
    await delivered.nth(1).waitFor();
    const sent = (await seeder.request(HookLog, { id: webhookId })).webhook!.deliveries;
    expect(sent.map((d) => d.state)).toEqual(['DELIVERED', 'DELIVERED']);
    const ids = receiver.requests.map((r) => r.deliveryId);
    expect(new Set(ids).size).toBe(2);
    expect(ids.sort()).toEqual(sent.map((d) => d.deliveryId).sort());
    expect(receiver.requests.every((r) => String(r.headers['x-dagpipe-signature-256']).startsWith('sha256='))).toBe(true);
    await expectAccessible(page);
    await screenshot(page, 'admin-webhook', { fromTop: true });

    // Edit: only what changed is sent (the secret stays).
    await page.locator('summary', { hasText: 'Edit' }).click();
    await page.getByLabel('Description (optional)').fill('ops chat');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.locator('.facts').getByText('ops chat').waitFor();
    // Pause it.
    await page.getByRole('button', { name: `Disable the webhook to ${receiver.url}` }).click();
    await page.getByRole('button', { name: `Enable the webhook to ${receiver.url}` }).waitFor();
    expect((await seeder.request(HookList)).webhooks).toMatchObject([{ description: 'ops chat', hasSecret: true, enabled: false }]);
    await finish();
  });

  it('webhooks: deleting one asks first, then returns to the list', { timeout: 120_000 }, async () => {
    const { page, finish } = await signIn(alice);
    await page.goto(`${root}/admin/webhooks/${webhookId}`);
    await page.getByRole('button', { name: 'Delete this webhook' }).click();
    await page.getByRole('group').getByText(/Delete this webhook with its delivery log\?/).waitFor();
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await page.getByText('No webhooks yet').waitFor();
    expect(new URL(page.url()).pathname).toBe('/admin/webhooks');
    expect((await seeder.request(HookList)).webhooks).toEqual([]);
    // Its page now says it is gone.
    await page.goto(`${root}/admin/webhooks/${webhookId}`);
    await page.getByText(`There is no webhook ${webhookId}`).waitFor();
    await finish();
  });

  it('audit log: shows those changes readably, filters by actor and action, and pages back', { timeout: 120_000 }, async () => {
    // Enough createToken entries for a second page.
    for (let i = 0; i < 55; i++) expect((await seeder.request(MakeToken, { name: `bulk-${i}`, role: 'viewer' })).createToken.__typename).toBe('CreatedToken');

    const { page, finish } = await signIn(alice);
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.getByRole('heading', { name: 'Audit log' }).waitFor();
    const rows = page.locator('tbody tr');
    await rows.first().waitFor();
    expect(await rows.count()).toBe(50);

    await page.getByLabel('Actor').fill('alice');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.getByRole('status').filter({ hasText: 'filtered' }).waitFor();
    expect(new URL(page.url()).search).toBe('?actor=alice');
    const actions = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-action')));
    expect(actions).toEqual(['deleteWebhook', 'updateWebhook', 'updateWebhook', 'redeliverWebhookDelivery', 'createWebhook', 'revokeToken', 'createToken']);
    expect(await rows.evaluateAll((trs) => trs.map((tr) => tr.children[2]!.textContent))).toEqual(Array(7).fill(expect.stringMatching(/^alice \(token \d+\)$/)));
    // Each entry's fields, readable: the arguments by name, a webhook secret never shown.
    const created = page.locator('tr[data-action="createToken"]');
    expect(await created.locator('dl').innerText()).toMatch(/name\s+ci-nightly\s+role\s+operator/);
    const hook = await page.locator('tr[data-action="createWebhook"]').innerText();
    expect(hook).toContain(receiver.url);
    expect(hook).toMatch(/secret\s+\*\*\*/);
    expect(await page.content()).not.toContain(SECRET);
    // An update's input, spread into dotted names.
    expect(await page.locator('tr[data-action="updateWebhook"]').first().locator('dl').innerText()).toMatch(/id\s+\d+\s+input\.enabled\s+false/);
    expect(await page.locator('tr[data-action="createWebhook"]').getByRole('link').getAttribute('href')).toBe(`/admin/webhooks/${webhookId}`);
    await page.getByText('No older entries.').waitFor();
    await expectAccessible(page);
    await screenshot(page, 'admin-audit', { fromTop: true });

    await page.getByLabel('Actor').fill('');
    await page.getByLabel('Action').fill('startPipeline');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL((u) => u.search === '?action=startPipeline');
    await page.getByRole('status').filter({ hasText: '1 entry, newest first, filtered' }).waitFor();
    expect(await rows.evaluateAll((trs) => trs.map((tr) => [tr.getAttribute('data-action'), tr.children[2]!.textContent]))).toEqual([
      ['startPipeline', expect.stringMatching(/^seeder/)],
    ]);

    // 55 bulk tokens and ci-nightly: two pages, newest first, none twice.
    await page.getByLabel('Action').fill('createToken');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.getByRole('status').filter({ hasText: '50 entries so far' }).waitFor();
    await page.getByRole('button', { name: 'Older entries' }).click();
    await page.getByText('No older entries.').waitFor();
    const ids = await rows.evaluateAll((trs) => trs.map((tr) => Number(tr.children[0]!.textContent)));
    expect(ids).toHaveLength(56);
    expect([...ids].sort((a, b) => b - a)).toEqual(ids);
    expect(new Set(ids).size).toBe(56);
    await page.getByRole('button', { name: 'Show all' }).click();
    await page.waitForURL((u) => u.search === '');
    await finish();
  });

  it('an operator opening the admin pages reads that they need the admin role', { timeout: 120_000 }, async () => {
    const { page, finish } = await signIn(bob);
    const nav = page.getByRole('navigation', { name: 'Pages' });
    expect(await nav.getByRole('link').allInnerTexts()).toEqual(['dagpipe', 'Graphs', 'Waiting for input']);
    for (const [path, field] of [
      ['/admin/tokens', 'tokens'],
      ['/admin/webhooks', 'webhooks'],
      ['/admin/webhooks/1', 'webhook'],
      ['/admin/audit', 'auditLog'],
    ] as const) {
      await page.goto(`${root}${path}`);
      const alert = page.getByRole('alert');
      await alert.waitFor();
      expect(await alert.innerText()).toMatch(new RegExp(`^${field} needs the admin role; this token's role is operator`));
      expect(await page.getByRole('table').count()).toBe(0);
      expect(await page.getByRole('form').count()).toBe(0);
    }
    await finish();
  });
});
