// "What am I looking at": two sentences at the top of each panel, and the papers the page
// implements. Plain links: nothing is fetched from outside at load.

export const PAPERS = {
  doubleRounding: { href: 'https://arxiv.org/abs/2502.01199', text: 'Double Rounding (Huang et al., arXiv 2502.01199)' },
  arq: { href: 'https://arxiv.org/abs/2410.24214', text: 'ARQ (Yang et al., arXiv 2410.24214)' },
  cohen: { href: 'https://arxiv.org/abs/1902.02918', text: 'randomized smoothing (Cohen et al., arXiv 1902.02918)' },
  irs: { href: 'https://arxiv.org/abs/2305.19521', text: 'incremental randomized smoothing, IRS (Ugare et al., arXiv 2305.19521)' },
} as const;

type Paper = keyof typeof PAPERS;

export function paperLink(p: Paper): string {
  const { href, text } = PAPERS[p];
  return `<a href="${href}" rel="noopener noreferrer" target="_blank">${text}</a>`;
}

/** Two sentences per panel: what it shows, and what to do or notice first. */
const WHAT: Record<'model' | 'bits' | 'grid' | 'certify' | 'draw', string> = {
  model:
    'A small convolutional network trained on handwritten digits (MNIST) or clothing (Fashion-MNIST) with Gaussian ' +
    'noise of strength σ added to its inputs, so that it can be certified later. Start here: pick a dataset, a σ and the ' +
    'int8 model (a supernet, trained on mixed per-layer widths, or a multi-bit model, trained on uniform ones and a little ' +
    'better at 2 bits); the table shows how accurate the one stored model is at each bit-width it was trained for.',
  bits:
    'Each layer computes with integers of a few bits; fewer bits make the model smaller and cheaper (BOPs) and, at some ' +
    'point, less accurate. Press a preset or move a slider and watch the accuracy, the cost and the weight histogram ' +
    `change; all widths come from one stored 8-bit model by ${paperLink('doubleRounding')}.`,
  grid:
    'Every shipped test image with what the model, at the current bits, predicts for it; mistakes are framed in red. ' +
    'Select an image (click, or the arrow keys) to certify it alone below.',
  certify:
    'A certified radius r is a guarantee: no change of the image smaller than r (its ℓ₂ length, pixels in [0, 1]) can ' +
    `change the smoothed model's answer, with probability at least 1 − α, by ${paperLink('cohen')}. ` +
    'Certify a few images, then a lower-precision policy, and compare the curves: the higher and further right, the ' +
    `more robust (${paperLink('irs')} reuses the stored model's certificate; ${paperLink('arq')} searches policies by it).`,
  draw:
    'Your own digit, scaled and centred the way the MNIST digits were, classified at the current bits beside the ' +
    'stored model. Draw, or drop an image file, then certify it to see how far its noisy copies can stray.',
};

/** The panel's "what am I looking at" paragraph, as HTML. */
export function whatHtml(panel: keyof typeof WHAT): string {
  return `<p class="what" data-panel="${panel}">${WHAT[panel]}</p>`;
}
