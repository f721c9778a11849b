// The key card: a PNG the operator posts on the official account (key, validity, caption),
// drawn on a <canvas> in the browser so no image library or upload is involved.
const W = 1080;
const H = 1080;

function wrap(ctx, text, maxWidth) {
  // Works for CJK (no spaces) and Latin text alike: break by characters, prefer spaces.
  const lines = [];
  let line = '';
  for (const ch of [...text]) {
    const test = line + ch;
    if (ctx.measureText(test).width > maxWidth && line) {
      const space = line.lastIndexOf(' ');
      if (space > 0 && ch !== ' ') {
        lines.push(line.slice(0, space));
        line = line.slice(space + 1) + ch;
      } else {
        lines.push(line);
        line = ch === ' ' ? '' : ch;
      }
    } else line = test;
  }
  if (line) lines.push(line);
  return lines;
}

export function drawKeyCard(canvas, { key, validFrom, validUntil, caption, title = 'Access key · 访问密钥' }) {
  canvas.width = W;
  canvas.height = H;
  const ctx = canvas.getContext('2d');
  const font = '"Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", system-ui, sans-serif';
  const mono = 'ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace';

  const bg = ctx.createLinearGradient(0, 0, W, H);
  bg.addColorStop(0, '#ff7a45');
  bg.addColorStop(1, '#f5315f');
  ctx.fillStyle = bg;
  ctx.fillRect(0, 0, W, H);
  // Soft circles for depth.
  ctx.fillStyle = 'rgba(255,255,255,0.08)';
  ctx.beginPath();
  ctx.arc(W * 0.9, H * 0.1, 260, 0, Math.PI * 2);
  ctx.fill();
  ctx.beginPath();
  ctx.arc(W * 0.05, H * 0.95, 320, 0, Math.PI * 2);
  ctx.fill();

  // White panel.
  const px = 80;
  const py = 190;
  const pw = W - 160;
  const ph = 640;
  ctx.fillStyle = '#ffffff';
  ctx.shadowColor = 'rgba(0,0,0,0.18)';
  ctx.shadowBlur = 40;
  ctx.beginPath();
  ctx.roundRect(px, py, pw, ph, 36);
  ctx.fill();
  ctx.shadowBlur = 0;

  ctx.fillStyle = '#ffffff';
  ctx.font = `700 56px ${font}`;
  ctx.textBaseline = 'alphabetic';
  ctx.fillText('nemo', 80, 120);
  ctx.font = `500 30px ${font}`;
  ctx.globalAlpha = 0.85;
  ctx.fillText('AI chat · 智能聊天', 80, 160);
  ctx.globalAlpha = 1;

  ctx.textAlign = 'center';
  ctx.fillStyle = '#667085';
  ctx.font = `600 36px ${font}`;
  ctx.fillText(title, W / 2, py + 95);

  // The key, as large as fits.
  let size = 200;
  ctx.font = `800 ${size}px ${mono}`;
  const spaced = [...key].join(' ');
  while (ctx.measureText(spaced).width > pw - 120 && size > 40) {
    size -= 8;
    ctx.font = `800 ${size}px ${mono}`;
  }
  ctx.fillStyle = '#c2410c';
  ctx.fillText(spaced, W / 2, py + 150 + size * 0.85);

  ctx.strokeStyle = '#eaecf0';
  ctx.lineWidth = 3;
  ctx.beginPath();
  ctx.moveTo(px + 60, py + 440);
  ctx.lineTo(px + pw - 60, py + 440);
  ctx.stroke();

  ctx.fillStyle = '#1c2434';
  ctx.font = `600 34px ${font}`;
  ctx.fillText(validUntil ? `Valid until · 有效期至 ${validUntil}` : 'Valid until the next rotation', W / 2, py + 510);
  if (validFrom) {
    ctx.fillStyle = '#667085';
    ctx.font = `500 28px ${font}`;
    ctx.fillText(`Issued · 发布于 ${validFrom}`, W / 2, py + 565);
  }

  // Caption under the panel.
  ctx.fillStyle = '#ffffff';
  ctx.font = `600 38px ${font}`;
  const lines = wrap(ctx, caption || '', W - 160).slice(0, 3);
  lines.forEach((l, i) => ctx.fillText(l, W / 2, py + ph + 90 + i * 50));
  ctx.textAlign = 'start';
}

export function downloadCanvas(canvas, filename) {
  canvas.toBlob((blob) => {
    if (!blob) return;
    const url = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = url;
    a.download = filename;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }, 'image/png');
}
