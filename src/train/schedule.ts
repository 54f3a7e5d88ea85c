/**
 * Learning-rate schedule of the CLIPSeg recipe: cosine annealing from `lr` to `minLr` over the run, stepped once per
 * optimizer step, as torch's `CosineAnnealingLR(T_max=steps, eta_min=minLr)`, optionally preceded by a linear warm-up
 * that behaves like torch's `SequentialLR(LinearLR(1/W -> 1 over W steps), CosineAnnealingLR(T_max=steps - W))`.
 *
 * The closed form is used instead of torch's recursive update so that the rate depends on the step index only
 * (exact resume needs no scheduler state); the two agree to float64 rounding.
 */
import { InvalidArgumentError } from '../errors.js';

export interface ScheduleOptions {
  /** Peak (initial) learning rate. */
  lr: number;
  /** Rate the cosine reaches at `steps` (torch `eta_min`). */
  minLr: number;
  /** Total optimizer steps of the run (torch `T_max`, plus the warm-up). */
  steps: number;
  /** Linear warm-up steps before the cosine starts (0 = none, the recipe's choice). */
  warmupSteps?: number;
}

export class CosineSchedule {
  readonly lr: number;
  readonly minLr: number;
  readonly steps: number;
  readonly warmupSteps: number;

  constructor(options: ScheduleOptions) {
    const { lr, minLr, steps } = options;
    const warmupSteps = options.warmupSteps ?? 0;
    if (!(Number.isFinite(lr) && lr > 0)) throw new InvalidArgumentError(`lr: expected a positive number, got ${lr}`);
    if (!(Number.isFinite(minLr) && minLr >= 0 && minLr <= lr)) {
      throw new InvalidArgumentError(`minLr: expected a number in [0, lr = ${lr}], got ${minLr}`);
    }
    if (!Number.isInteger(steps) || steps <= 0) throw new InvalidArgumentError(`steps: expected a positive integer, got ${steps}`);
    if (!Number.isInteger(warmupSteps) || warmupSteps < 0 || warmupSteps >= steps) {
      throw new InvalidArgumentError(`warmupSteps: expected an integer in [0, steps = ${steps}), got ${warmupSteps}`);
    }
    this.lr = lr;
    this.minLr = minLr;
    this.steps = steps;
    this.warmupSteps = warmupSteps;
  }

  /** The learning rate of the optimizer step with 0-based index `step`. */
  at(step: number): number {
    if (!Number.isInteger(step) || step < 0) throw new InvalidArgumentError(`step: expected a non-negative integer, got ${step}`);
    if (step < this.warmupSteps) return (this.lr * (step + 1)) / this.warmupSteps;
    const t = step - this.warmupSteps;
    const period = this.steps - this.warmupSteps;
    return this.minLr + ((this.lr - this.minLr) * (1 + Math.cos((Math.PI * t) / period))) / 2;
  }
}
