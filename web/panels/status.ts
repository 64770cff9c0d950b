// Progress bar with a cancel button, and an error/notice banner. Long work always shows here.

export class StatusPanel {
  private bar: HTMLProgressElement;
  private label: HTMLElement;
  private cancelButton: HTMLButtonElement;
  private banner: HTMLElement;
  private onCancel: (() => void) | null = null;

  constructor(root: HTMLElement) {
    root.innerHTML = `
      <div class="status-row">
        <progress id="progress" max="1" value="0" aria-label="progress"></progress>
        <span id="progress-label" aria-live="polite"></span>
        <button id="cancel" type="button" disabled>Cancel</button>
      </div>
      <div id="banner" role="alert" hidden></div>`;
    this.bar = root.querySelector('#progress')!;
    this.label = root.querySelector('#progress-label')!;
    this.cancelButton = root.querySelector('#cancel')!;
    this.banner = root.querySelector('#banner')!;
    this.cancelButton.addEventListener('click', () => this.onCancel?.());
  }

  begin(label: string, onCancel: () => void): void {
    this.onCancel = onCancel;
    this.cancelButton.disabled = false;
    this.bar.value = 0;
    this.label.textContent = label;
  }

  progress(done: number, total: number, label: string): void {
    this.bar.value = total > 0 ? done / total : 0;
    this.label.textContent = `${label} ${done.toLocaleString('en')} / ${total.toLocaleString('en')}`;
  }

  end(label: string): void {
    this.onCancel = null;
    this.cancelButton.disabled = true;
    this.bar.value = 1;
    this.label.textContent = label;
  }

  error(message: string): void {
    this.show(message, 'error');
  }

  /** `append`: add to a notice already shown (e.g. about the same link) instead of replacing it. */
  notice(message: string, append = false): void {
    const shown = !this.banner.hidden && this.banner.className === 'notice';
    this.show(append && shown ? `${this.banner.textContent} ${message}` : message, 'notice');
  }

  clear(): void {
    this.banner.hidden = true;
  }

  private show(message: string, kind: 'error' | 'notice'): void {
    this.banner.hidden = false;
    this.banner.className = kind;
    this.banner.textContent = message;
  }
}
