import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type BrowserContext, chromium } from 'playwright-core';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

// /docs in a real headless Chromium (Debian's, installed by scripts/setup.sh) against the real API: what a person
// does, pasting a token under Authorize and trying a GET, and that the page reaches nothing but this API.
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

describe('/docs: Swagger UI with a working "Try it out"', () => {
  let stack: Stack;
  let browser: BrowserContext;
  const profile = mkdtempSync(join(tmpdir(), 'ctrlplane-docs-chromium-'));

  before(async () => {
    stack = await startStack({ worker: false, env: { CTRLPLANE_RATE_LIMIT_PER_MINUTE: '0' } });
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_FLAGS,
    });
  });

  after(async () => {
    await browser?.close();
    await stack?.close();
    rmSync(profile, { recursive: true, force: true });
  });

  it('lists the operations, takes a pasted token and gets a 200 from the running API for a GET', async () => {
    const token = await stack.token(uniqueTenant('docs'));
    const page = await browser.newPage();
    const requested: string[] = [];
    const problems: string[] = [];
    page.on('request', (request) => requested.push(request.url()));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    page.on('pageerror', (err) => problems.push(err.message));

    const answer = await page.goto(`${stack.api.url}/docs`);
    assert.equal(answer?.status(), 200);
    const operation = page.locator('#operations-instances-listInstances');
    await operation.waitFor({ timeout: 30_000 });

    await page.getByRole('button', { name: 'Authorize' }).first().click();
    await page
      .locator('.auth-container input[type="text"], .auth-container input[type="password"]')
      .first()
      .fill(token);
    await page.locator('.auth-btn-wrapper button.authorize').click();
    await page.locator('.auth-btn-wrapper button.btn-done').click();

    await operation.locator('.opblock-summary').click();
    await operation.getByRole('button', { name: 'Try it out' }).click();
    const listed = page.waitForResponse((r) => r.url().startsWith(`${stack.api.url}/v1/instances`));
    await operation.getByRole('button', { name: 'Execute' }).click();
    const response = await listed;
    assert.equal(response.status(), 200, await response.text());
    assert.equal(response.request().headers().authorization, `Bearer ${token}`, 'the pasted token was sent');
    const status = operation.locator('.live-responses-table .response .response-col_status').first();
    await status.waitFor({ timeout: 10_000 });
    assert.equal((await status.textContent())?.trim(), '200', 'the page shows the answer');
    assert.match(
      (await operation.locator('.live-responses-table .microlight').first().textContent()) ?? '',
      /"items": \[\]/,
    );

    assert.deepEqual(
      requested.filter((url) => !url.startsWith(`${stack.api.url}/`) && !url.startsWith('data:')),
      [],
      'nothing is loaded from anywhere but the API',
    );
    assert.deepEqual(problems, [], 'no script error and no Content-Security-Policy violation');
    await page.close();
  });
});
