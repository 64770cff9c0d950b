// End-to-end: the page on a phone, in a dark theme and by keyboard (issue 14, item 4).
import { expect, test, type Page } from '@playwright/test';
import { watch } from './helpers';

async function open(page: Page, hash: string): Promise<void> {
  await page.goto(`./${hash}`);
  await expect(page.locator('body')).toHaveAttribute('data-status', 'ready');
}

/** Elements whose box reaches past the viewport's right edge (or starts left of 0), except
 * those inside a scrolling box (which scroll, not the page). */
async function overflowing(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const inScroller = (el: Element): boolean => {
      for (let p = el.parentElement; p; p = p.parentElement) {
        const o = getComputedStyle(p).overflowX;
        if (o === 'auto' || o === 'scroll' || o === 'hidden') return true;
      }
      return false;
    };
    const out: string[] = [];
    for (const el of Array.from(document.querySelectorAll('body *'))) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      if ((r.right > width + 0.5 || r.left < -0.5) && !inScroller(el)) {
        out.push(`${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}.${el.className} ${Math.round(r.left)}..${Math.round(r.right)}`);
      }
    }
    return out;
  });
}

for (const width of [390, 360]) {
  test(`at ${width} px nothing is wider than the phone's screen, with certification results shown`, async ({ page }) => {
    const seen = watch(page);
    await page.setViewportSize({ width, height: 800 });
    await open(page, '#n=200&count=3&w=4,4,4,4,4,4,4,4&a=4,4,4,4,4,4,4,4&irs=1');
    await page.locator('#certify-run').click();
    await expect(page.locator('#certify-panel')).toHaveAttribute('data-status', 'completed');
    await page.locator('#certify-selected').click();
    await expect(page.locator('#certify-selected-view')).toHaveAttribute('data-status', 'done');
    await page.locator('#banner').evaluate((b: HTMLElement) => {
      // the longest notice a link can cause
      b.hidden = false;
      b.className = 'notice';
      b.textContent = 'Ignored invalid link parameters: w=9,9,9,9,9,9,9,9&a=9,9,9,9,9,9,9,9 (a policy is 8 widths in 2..8 for each of w and a).';
    });
    expect(await overflowing(page)).toEqual([]);
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
    await page.screenshot({ path: `test-results/phone-${width}.png`, fullPage: true });
    expect(seen.errors).toEqual([]);
  });
}

test('a dark colour scheme gives a dark page with light text', async ({ browser }) => {
  const context = await browser.newContext({ colorScheme: 'dark' });
  const page = await context.newPage();
  await open(page, '');
  const luminance = (css: string) => {
    const [r, g, b] = css.match(/\d+(\.\d+)?/g)!.map(Number);
    return (0.2126 * r! + 0.7152 * g! + 0.0722 * b!) / 255;
  };
  const colours = await page.evaluate(() => {
    const style = (sel: string) => getComputedStyle(document.querySelector(sel)!);
    return {
      page: getComputedStyle(document.documentElement).backgroundColor,
      text: getComputedStyle(document.body).color,
      panel: style('.panel').backgroundColor,
      tile: style('.tile').backgroundColor,
      input: style('#cert-n').backgroundColor,
    };
  });
  expect(luminance(colours.page)).toBeLessThan(0.2);
  expect(luminance(colours.panel)).toBeLessThan(0.2);
  expect(luminance(colours.tile)).toBeLessThan(0.25);
  expect(luminance(colours.input)).toBeLessThan(0.25);
  expect(luminance(colours.text)).toBeGreaterThan(0.7);
  await page.screenshot({ path: 'test-results/dark.png' });
  await context.close();

  // and the light scheme stays light
  const light = await browser.newContext({ colorScheme: 'light' });
  const lightPage = await light.newPage();
  await open(lightPage, '');
  const bg = await lightPage.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
  expect(luminance(bg)).toBeGreaterThan(0.8);
  await light.close();
});

test('a skip link is the first Tab stop and jumps to the main content', async ({ page }) => {
  await open(page, '');
  await page.keyboard.press('Tab');
  const skip = page.getByRole('link', { name: 'Skip to the main content' });
  await expect(skip).toBeFocused();
  await expect(skip).toBeVisible();
  await page.keyboard.press('Enter');
  await expect(page.locator('main')).toBeFocused();
  // the next Tab lands inside main, at its first control
  await page.keyboard.press('Tab');
  expect(await page.evaluate(() => document.querySelector('main')!.contains(document.activeElement))).toBe(true);
});

test('the image grid is a listbox with one Tab stop: arrows move and select, the selection is announced', async ({ page }) => {
  await open(page, '#selected=0');
  const grid = page.getByRole('listbox', { name: /test images/ });
  await expect(grid).toBeVisible();
  await expect(grid.getByRole('option')).toHaveCount(100);
  await expect(grid.locator('[tabindex="0"]')).toHaveCount(1);
  await expect(grid.getByRole('option', { selected: true })).toHaveAttribute('data-index', '0');

  // Tab from the control before the grid reaches one tile, the next Tab leaves the grid
  await page.locator('#export-csv').focus();
  await page.keyboard.press('Tab');
  await expect(page.locator('.tile[data-index="0"]')).toBeFocused();
  await page.keyboard.press('ArrowRight');
  await expect(page.locator('.tile[data-index="1"]')).toBeFocused();
  await expect(page).toHaveURL(/selected=1(&|$)/);
  await expect(page.locator('.tile[data-index="1"]')).toHaveAttribute('aria-selected', 'true');
  await expect(page.locator('#grid-announce')).toContainText('Image 1 selected');
  const columns = await page.evaluate(() => {
    const tiles = Array.from(document.querySelectorAll<HTMLElement>('.tile'));
    return tiles.filter((t) => t.offsetTop === tiles[0]!.offsetTop).length;
  });
  await page.keyboard.press('ArrowDown');
  await expect(page.locator(`.tile[data-index="${1 + columns}"]`)).toBeFocused();
  await expect(page).toHaveURL(new RegExp(`selected=${1 + columns}(&|$)`));
  await page.keyboard.press('End');
  await expect(page.locator('.tile[data-index="99"]')).toBeFocused();
  await page.keyboard.press('Home');
  await expect(page.locator('.tile[data-index="0"]')).toBeFocused();
  await page.keyboard.press('Tab');
  expect(await page.evaluate(() => document.activeElement?.closest('#grid'))).toBeNull();
  await expect(page.locator('#certify-selected')).toHaveText('Certify the selected image (#0)');

  // Tab stops before the Certify panel's first control: far fewer than the 100 tiles
  await page.locator('body').evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
  let stops = 0;
  for (; stops < 80; stops++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate(() => Boolean(document.activeElement?.closest('#certify-panel')))) break;
  }
  expect(stops).toBeLessThan(40);
});

test('focus stays where the visitor was after "Next ›", "‹ Previous" and selecting an image', async ({ page }) => {
  await open(page, '');
  const next = page.getByRole('button', { name: 'Next ›' });
  await next.focus();
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(/page=1(&|$)/);
  await expect(page.locator('.tile').first()).toHaveAttribute('data-index', '100');
  await expect(next).toBeFocused();
  const previous = page.getByRole('button', { name: '‹ Previous' });
  await previous.focus();
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(/page=0(&|$)/);
  // the first page has no previous one: focus moves to the button beside it, not to <body>
  await expect(next).toBeFocused();

  await page.locator('.tile[data-index="5"]').click();
  await expect(page).toHaveURL(/selected=5(&|$)/);
  await expect(page.locator('.tile[data-index="5"]')).toBeFocused();
  await page.locator('.tile[data-index="7"]').focus();
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(/selected=7(&|$)/);
  await expect(page.locator('.tile[data-index="7"]')).toBeFocused();

  // at the last page Next is disabled: focus moves to Previous
  await page.goto('./#page=8');
  await expect(page.locator('body')).toHaveAttribute('data-status', 'ready');
  await next.focus();
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(/page=9(&|$)/);
  await expect(previous).toBeFocused();
});
