/**
 * Feature scaling's plans: the view's elementwise geometry (batch norm's: the transform runs
 * batch norm's normalize kernel) and the chunked partials of adapt.
 */
import { structBytes } from './kernels.js';
import { packStruct, tensorStorage } from '../batchnorm/kernels.js';
import { cachedPlan, uniform } from '../core/plans.js';
import type { ChannelView } from '../core/layout.js';
import { CHUNK, elementwise, viewFields, viewKey, type ElementwisePlan } from '../batchnorm/plan.js';

/** What adapt and the transform need: the elementwise geometry and the partials of adapt. */
export interface ScalingPlan extends ElementwisePlan {
  readonly chunks: number;
  readonly partialWorkgroups: number;
  /** Scratch bytes of the partials: one ScalePartial (32 bytes) per (feature, chunk). */
  readonly partialBytes: number;
}

/** The feature-scaling plan of `view`, held by `holder`. */
export function scalingPlan(device: GPUDevice, view: ChannelView, holder: object): ScalingPlan {
  const storage = tensorStorage(device, 'float32', view);
  return cachedPlan(device, `scaling ${storage} ${viewKey(view)}`, holder, () => {
    const chunks = Math.ceil((view.outer * view.inner) / CHUNK);
    const params = packStruct('Params', {
      ...viewFields(view, chunks, CHUNK),
      eps: 0,
      momentum: -1,
      update_running: 0,
      batch_stats: 0,
      update_non_finite: 0,
      unbiased_running: 1,
    });
    return {
      ...elementwise(view, storage, 'none', uniform(device, `scaling ${viewKey(view)}`, params)),
      chunks,
      partialWorkgroups: view.channels * chunks,
      partialBytes: view.channels * chunks * structBytes('ScalePartial'),
    };
  });
}
