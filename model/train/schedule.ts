// Learning-rate schedule of GPT-1's recipe: linear warm-up from 0, then cosine decay
// (the paper anneals to 0; `minLrRatio` keeps a floor so a run extended later still learns).

export interface ScheduleConfig {
  lr: number;
  warmupSteps: number;
  /** Step at which the cosine reaches its floor (the planned length of the run). */
  steps: number;
  /** Floor as a fraction of lr (0 = the paper's anneal to zero). */
  minLrRatio: number;
  /** Shape after warm-up: 'cosine' (pre-training, the default) or 'linear' (GPT-1's fine-tuning). */
  decay?: 'cosine' | 'linear';
}

/** Learning rate for optimizer step `step` (0-based: the first update uses step 0). */
export function learningRate(step: number, c: ScheduleConfig): number {
  if (c.warmupSteps > 0 && step < c.warmupSteps) return (c.lr * (step + 1)) / c.warmupSteps;
  const decaySteps = Math.max(1, c.steps - c.warmupSteps);
  const progress = Math.min(1, (step - c.warmupSteps) / decaySteps);
  const floor = c.lr * c.minLrRatio;
  if (c.decay === 'linear') return floor + (c.lr - floor) * (1 - progress);
  return floor + 0.5 * (c.lr - floor) * (1 + Math.cos(Math.PI * progress));
}
