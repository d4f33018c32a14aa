// The WebVTT storyboard: each cue maps a time range to a tile of the sprite,
// written as `sprite.jpg#xywh=x,y,w,h` relative to the VTT file.
function seconds(stamp) {
  const parts = stamp.trim().split(":").map(Number);
  return parts.reduce((total, part) => total * 60 + part, 0);
}

export async function loadStoryboard(url) {
  try {
    const response = await fetch(url);
    if (!response.ok) return [];
    return parse(await response.text(), response.url || url);
  } catch {
    return [];
  }
}

export function parse(text, base) {
  const cues = [];
  for (const block of text.replace(/\r\n?/g, "\n").split(/\n\n+/)) {
    const lines = block.split("\n");
    const at = lines.findIndex((line) => line.includes("-->"));
    if (at < 0 || !lines[at + 1]) continue;
    const [start, end] = lines[at].split("-->").map((part) => seconds(part.trim().split(/\s+/)[0]));
    const target = new URL(lines[at + 1].trim(), base);
    const match = /xywh=(\d+),(\d+),(\d+),(\d+)/.exec(target.hash);
    if (!match) continue;
    const [x, y, w, h] = match.slice(1).map(Number);
    target.hash = "";
    cues.push({ start, end, image: target.href, x, y, w, h });
  }
  return cues;
}

export function tileAt(cues, time) {
  return cues.find((cue) => time >= cue.start && time < cue.end) || cues[cues.length - 1] || null;
}
