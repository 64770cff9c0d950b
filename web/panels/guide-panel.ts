// The step-by-step guide: the workshop tutorials (docs/tutorials/) one step at a time, in a
// panel that stays in view while the visitor works in the page. Opened from the header.
import { TUTORIALS } from '../guide/tutorials';

export class GuidePanel {
  private tutorial = 0;
  private step = 0;
  private heading: HTMLElement;
  private counter: HTMLElement;
  private body: HTMLElement;
  private back: HTMLButtonElement;
  private next: HTMLButtonElement;
  private opener: HTMLElement | null = null;

  constructor(
    private root: HTMLElement,
    nav: HTMLElement,
  ) {
    nav.innerHTML =
      'Tutorials: ' +
      TUTORIALS.map((t, i) => `<button type="button" class="link-button" data-tutorial="${i}">${t.title.replace(/^Tutorial \d+: /, `${i + 1}. `)}</button>`).join(' ');
    root.hidden = true;
    root.innerHTML = `
      <h2 id="guide-title" tabindex="-1"></h2>
      <p id="guide-counter" class="muted" aria-live="polite"></p>
      <div id="guide-body"></div>
      <div class="controls">
        <button id="guide-back" type="button">‹ Back</button>
        <button id="guide-next" type="button">Next step ›</button>
        <button id="guide-close" type="button">Close</button>
      </div>`;
    this.heading = root.querySelector<HTMLElement>('#guide-title')!;
    this.counter = root.querySelector<HTMLElement>('#guide-counter')!;
    this.body = root.querySelector<HTMLElement>('#guide-body')!;
    this.back = root.querySelector<HTMLButtonElement>('#guide-back')!;
    this.next = root.querySelector<HTMLButtonElement>('#guide-next')!;
    for (const b of nav.querySelectorAll<HTMLButtonElement>('[data-tutorial]')) {
      b.addEventListener('click', () => {
        this.opener = b;
        this.open(Number(b.dataset.tutorial));
      });
    }
    this.back.addEventListener('click', () => this.show(this.step - 1));
    this.next.addEventListener('click', () => this.show(this.step + 1));
    root.querySelector('#guide-close')!.addEventListener('click', () => this.close());
    document.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && !this.root.hidden) this.close();
    });
  }

  open(tutorial: number): void {
    this.tutorial = tutorial;
    this.root.hidden = false;
    this.show(-1);
    this.heading.focus();
  }

  private close(): void {
    this.root.hidden = true;
    this.opener?.focus();
  }

  /** Step `i` of the open tutorial; −1 is its introduction. */
  private show(i: number): void {
    const t = TUTORIALS[this.tutorial]!;
    this.step = Math.max(-1, Math.min(i, t.steps.length - 1));
    this.heading.textContent = t.title;
    if (this.step < 0) {
      this.counter.textContent = `${t.steps.length} steps`;
      this.body.innerHTML = t.intro;
    } else {
      const s = t.steps[this.step]!;
      this.counter.textContent = `Step ${this.step + 1} of ${t.steps.length}: ${s.title}`;
      this.body.innerHTML = s.html;
    }
    this.root.dataset.step = String(this.step + 1);
    this.back.disabled = this.step < 0;
    this.next.disabled = this.step === t.steps.length - 1;
    this.next.textContent = this.step < 0 ? 'Start ›' : 'Next step ›';
  }
}
