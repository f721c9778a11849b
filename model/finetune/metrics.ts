// Evaluation metrics of the fine-tuning tasks: accuracy and macro-F1 for classes and choices,
// Pearson and Spearman correlations for score labels (as GLUE reports STS-B).

export function accuracy(pred: readonly number[], gold: readonly number[]): number {
  if (pred.length !== gold.length || pred.length === 0) throw new RangeError('accuracy needs two non-empty lists of the same length');
  let hit = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] === gold[i]) hit++;
  return hit / pred.length;
}

/** Mean over classes 0..classes-1 of F1 (a class never predicted nor present counts as absent, not 0). */
export function macroF1(pred: readonly number[], gold: readonly number[], classes: number): number {
  let sum = 0;
  let counted = 0;
  for (let c = 0; c < classes; c++) {
    let tp = 0;
    let fp = 0;
    let fn = 0;
    for (let i = 0; i < pred.length; i++) {
      if (pred[i] === c && gold[i] === c) tp++;
      else if (pred[i] === c) fp++;
      else if (gold[i] === c) fn++;
    }
    if (tp + fp + fn === 0) continue;
    sum += (2 * tp) / (2 * tp + fp + fn);
    counted++;
  }
  return counted ? sum / counted : 0;
}

export function pearson(x: readonly number[], y: readonly number[]): number {
  const n = x.length;
  if (n !== y.length || n < 2) throw new RangeError('pearson needs two lists of the same length ≥ 2');
  const mx = x.reduce((a, b) => a + b, 0) / n;
  const my = y.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) ** 2;
    syy += (y[i] - my) ** 2;
  }
  return sxx === 0 || syy === 0 ? NaN : sxy / Math.sqrt(sxx * syy);
}

/** Ranks 1..n, ties sharing their mean rank. */
export function ranks(x: readonly number[]): number[] {
  const order = x.map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0]);
  const r = new Array<number>(x.length);
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j + 1 < order.length && order[j + 1][0] === order[i][0]) j++;
    const mean = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) r[order[k][1]] = mean;
    i = j + 1;
  }
  return r;
}

export function spearman(x: readonly number[], y: readonly number[]): number {
  return pearson(ranks(x), ranks(y));
}
