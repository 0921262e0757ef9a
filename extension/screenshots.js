// Screenshots of the agent's tab: what it showed before a step, small, with secrets painted over.
//
// chrome.tabs.captureVisibleTab shows whatever tab is in front of a window, so a tab that is not
// in front is not taken (the result says why), and Chrome allows two captures a second, so
// captures queue one after another at least CAPTURE_GAP_MS apart. The image is scaled to
// `max_width` and re-encoded as JPEG on an OffscreenCanvas; every secret field the page's layout
// names (the daemon's `cover` ids, every filled password or card field) is painted over first.
// A page whose layout cannot be read (the browser's error page) is taken only when nothing was
// to be covered on it.

const CAPTURE_GAP_MS = 510;
const COVER = "#5f6368";

let lastCapture = 0;
let queue = Promise.resolve();

/**
 * @param {number} tabId
 * @param {{cover?: number[], max_width?: number, quality?: number}} args
 * @param {(tabId: number, cover: number[]) => Promise<object|null>} layoutOf the content
 *   script's layout (observation.js `layout`), null when the page has none
 */
export function screenshot(tabId, args, layoutOf) {
  const taken = queue.then(() => take(tabId, args, layoutOf));
  queue = taken.catch(() => {});
  return taken;
}

async function take(tabId, { cover = [], max_width = 1024, quality = 0.6 }, layoutOf) {
  const tab = await chrome.tabs.get(tabId);
  if (!tab.active) return { skipped: "the tab was not in front of its window" };
  const wait = lastCapture + CAPTURE_GAP_MS - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  const layout = await layoutOf(tabId, cover).catch(() => null);
  if (!layout && cover.length) return { skipped: "the page's secret fields could not be located" };

  const t0 = performance.now();
  lastCapture = Date.now();
  const captured = await chrome.tabs.captureVisibleTab(tab.windowId, { format: "jpeg", quality: 90 });
  const t1 = performance.now();
  const bitmap = await createImageBitmap(await (await fetch(captured)).blob());
  const scale = Math.min(1, max_width / bitmap.width);
  const canvas = new OffscreenCanvas(Math.round(bitmap.width * scale), Math.round(bitmap.height * scale));
  const g = canvas.getContext("2d");
  g.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  const px = layout ? canvas.width / layout.width : scale;   // CSS pixels → image pixels
  const toImage = (box) => box.map((v) => Math.round(v * px));
  g.fillStyle = COVER;
  for (const [x, y, w, h] of (layout?.secrets || []).map(toImage)) g.fillRect(x - 2, y - 2, w + 4, h + 4);
  const jpeg = await canvas.convertToBlob({ type: "image/jpeg", quality });
  const boxes = Object.fromEntries(Object.entries(layout?.boxes || {}).map(([id, box]) => [id, toImage(box)]));
  return {
    image: base64(new Uint8Array(await jpeg.arrayBuffer())), width: canvas.width, height: canvas.height,
    boxes, covered: layout?.secrets.length || 0,
    capture_ms: Math.round(t1 - t0), encode_ms: Math.round(performance.now() - t1),
  };
}

function base64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}
