// Finds WebGPU in the current worker: an adapter, what it is, and a device (wgpu's, made by
// `createDevice`). Anything short of all three is "unavailable" with the reason, so the page
// certifies on the CPU workers instead.
import type { GpuInfo } from '../types';

/** The few WebGPU fields read here (TypeScript's DOM library has no WebGPU types yet). */
interface AdapterInfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}
interface AdapterLike {
  info?: AdapterInfoLike;
  isFallbackAdapter?: boolean;
}
interface GpuLike {
  requestAdapter(options?: { powerPreference?: string }): Promise<AdapterLike | null>;
}

/** "SwiftShader", "Apple M2", "NVIDIA GeForce …": the most specific name the adapter gives. */
export function adapterName(info: AdapterInfoLike): string {
  if (info.architecture === 'swiftshader') return 'SwiftShader';
  const name = info.description || [info.vendor, info.architecture].filter(Boolean).join(' ') || info.device;
  return name || 'unnamed adapter';
}

/** "WebGPU · SwiftShader (fallback adapter)". */
export function describeAdapter(adapter: AdapterLike): string {
  const info = adapter.info ?? {};
  const fallback = info.isFallbackAdapter ?? adapter.isFallbackAdapter ?? false;
  return `WebGPU · ${adapterName(info)}${fallback ? ' (fallback adapter)' : ''}`;
}

export async function detectGpu(createDevice: () => Promise<void>): Promise<GpuInfo> {
  const unavailable = (reason: string): GpuInfo => ({ available: false, description: '', reason });
  const gpu = (navigator as Navigator & { gpu?: GpuLike }).gpu;
  if (!gpu) return unavailable('this browser offers no WebGPU (navigator.gpu is missing)');
  let adapter: AdapterLike | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (e) {
    return unavailable(`WebGPU refused an adapter: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!adapter) return unavailable('WebGPU offers no adapter on this device (no usable GPU, or WebGPU disabled)');
  const description = describeAdapter(adapter);
  try {
    await createDevice();
  } catch (e) {
    return unavailable(`${description} gave no device: ${e instanceof Error ? e.message : String(e)}`);
  }
  return { available: true, description, reason: '' };
}
