// The workshop tutorials of docs/tutorials/, read at build time (one source for the docs and
// the page's step-by-step guide) and split into steps at their `##` headings.
import doubleRounding from '../../docs/tutorials/1-double-rounding.md?raw';
import certify from '../../docs/tutorials/2-certify-irs.md?raw';
import search from '../../docs/tutorials/3-search-budget.md?raw';

export interface Step {
  title: string;
  /** The step's text as HTML (paragraphs, bold, italics, code). */
  html: string;
}

export interface Tutorial {
  title: string;
  intro: string;
  steps: Step[];
}

const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The markdown the tutorials use: paragraphs, **bold**, *italics* and `code`. */
function inline(text: string): string {
  return escape(text)
    .replace(/`([^`]+)`/g, '<code>$1</code>')
    .replace(/\*\*([^*]+)\*\*/g, '<b>$1</b>')
    .replace(/\*([^*]+)\*/g, '<i>$1</i>');
}

function paragraphs(lines: string[]): string {
  return lines
    .join('\n')
    .split(/\n\s*\n/)
    .map((p) => p.trim())
    .filter(Boolean)
    .map((p) => `<p>${inline(p.replace(/\s*\n\s*/g, ' '))}</p>`)
    .join('');
}

/** One tutorial: `# title`, an intro, then `## step` sections. */
export function parseTutorial(markdown: string): Tutorial {
  const lines = markdown.split('\n');
  const title = (lines.find((l) => l.startsWith('# ')) ?? '# Tutorial').slice(2).trim();
  const steps: Step[] = [];
  const intro: string[] = [];
  let current: { title: string; lines: string[] } | null = null;
  for (const line of lines) {
    if (line.startsWith('# ')) continue;
    if (line.startsWith('## ')) {
      if (current) steps.push({ title: current.title, html: paragraphs(current.lines) });
      current = { title: line.slice(3).trim(), lines: [] };
    } else if (current) current.lines.push(line);
    else intro.push(line);
  }
  if (current) steps.push({ title: current.title, html: paragraphs(current.lines) });
  return { title, intro: paragraphs(intro), steps };
}

export const TUTORIALS: Tutorial[] = [doubleRounding, certify, search].map(parseTutorial);
