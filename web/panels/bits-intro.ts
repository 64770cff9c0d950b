// The Bits panel's opening paragraph: how the loaded model gets its lower widths and its
// activation scales (learned per bit-width for an int8 multi-bit model, calibrated for a float one).
import type { ModelInfo } from '../types';

const COMMON =
  "Every layer's weights are stored once as 8-bit integers; lower widths are derived from them on the fly by " +
  'Double Rounding (a rounded shift).';
const TAIL =
  'Pick widths per layer and watch accuracy and cost change. BOPs = MACs × weight bits × activation bits; the first layer multiplies the float image + noise (32 bits), which is never quantized.';

/** Plain text (no markup); `model` null while none is loaded. */
export function bitsIntro(model: Pick<ModelInfo, 'kind' | 'bits' | 'supernet'> | null): string {
  if (!model) return `${COMMON} ${TAIL}`;
  if (model.kind === 'int8' && model.supernet) {
    return (
      `${COMMON} This model is a supernet (HASB): mixed policies over ${model.bits.join(', ')} bits were trained, ` +
      "each layer drawing its width at every step (the sensitive layers, by Hessian trace, favour the high widths), with " +
      `learned activation scales and one batch-norm per layer and width. Any per-layer mix of those widths is a trained configuration. Without a policy it runs as stored, at w8a8. ${TAIL}`
    );
  }
  if (model.kind === 'int8') {
    const trained = model.bits.map((b) => `w${b}a${b}`).join(', ');
    return (
      `${COMMON} This model was trained jointly at ${trained} (multi-bit LSQ): its activation scales are learned ` +
      'per bit-width, with one batch-norm per bit-width; other widths borrow the scale and batch-norm of the ' +
      `nearest trained width. Without a policy it runs as stored, at w8a8. ${TAIL}`
    );
  }
  if (model.kind === 'export') {
    return `${COMMON} This file is an export at one fixed policy, with its learned activation scales. ${TAIL}`;
  }
  return (
    `${COMMON} This is a float model: it runs in float until you pick widths; then its weights are quantized ` +
    `after training and activations with ranges calibrated on training images. ${TAIL}`
  );
}
