// Recording demonstrations: the content script's recorded steps and the browser's own
// navigations go to the daemon in order, each with the screenshot of the moment before it.

import { send } from "./connection.js";
import { lastWebTab } from "./protocol.js";
import { screenshot } from "./screenshots.js";
import { setState } from "./state.js";
import { toContent } from "./tabs.js";

// Recorded steps go to the daemon one after another, in the order the page sent them, each
// with the screenshot of the moment before it (recorder.js `seen`), when one was taken.
let recordChain = Promise.resolve();
const snapshots = new Map();     // "tabId:id" → the screenshot being taken

function forwardRecorded(episodeId, step, tabId) {
  const key = `${tabId}:${step.shot}`;
  const shot = snapshots.get(key);
  snapshots.delete(key);
  recordChain = recordChain.then(async () => send({
    type: "record_step", episode_id: episodeId, action: step.action,
    observation: step.observation || null, target: step.target || null,
    screenshot: shot ? await shot.catch(() => null) : null,
  }));
  return recordChain;
}

/** Keep the newest few snapshots of a tab: a moment the user took no action from is dropped. */
function snapshot(tabId, id, layout) {
  snapshots.set(`${tabId}:${id}`, screenshot(tabId, {}, async () => layout));
  for (const key of [...snapshots.keys()].slice(0, -8)) snapshots.delete(key);
}

async function recordingIn(tabId) {
  const { recording } = await chrome.storage.session.get("recording");
  return recording && recording.tab_id === tabId ? recording : null;
}

export async function fromContent(message, sender) {
  const recording = await recordingIn(sender.tab.id);
  if (message.type === "recording?") return { recording: Boolean(recording) && sender.frameId === 0 };
  if (message.type === "snapshot" && recording && sender.frameId === 0) {
    snapshot(sender.tab.id, message.id, message.layout);
    return { ok: true };
  }
  if (message.type === "recorded" && recording && sender.frameId === 0) {
    await forwardRecorded(recording.episode_id, message, sender.tab.id);
    return { ok: true };
  }
  return { ok: false };
}

// Navigations the user makes from the browser itself (typed URL, back/forward) are steps too;
// link clicks and form submissions are already recorded as the clicks that caused them.
chrome.webNavigation.onCommitted.addListener(async ({ tabId, frameId, url, transitionType, transitionQualifiers }) => {
  const recording = frameId === 0 ? await recordingIn(tabId) : null;
  if (!recording) return;
  if (transitionQualifiers.includes("forward_back")) {
    await forwardRecorded(recording.episode_id, { action: { action: "go_back" } });
  } else if (["typed", "generated", "auto_bookmark"].includes(transitionType)) {
    await forwardRecorded(recording.episode_id, { action: { action: "goto", url } });
  }
});

export async function startRecording(task, requestId) {
  const tab = await lastWebTab();
  if (!tab) throw new Error("open the page where the task starts, then press Record");
  await setState({ recordTab: tab.id, lastError: null });
  return send({ type: "record_start", task, url: tab.url, tab_id: tab.id, request_id: requestId });
}

export async function stopRecording(success, requestId) {
  const { recording } = await chrome.storage.session.get("recording");
  if (!recording) throw new Error("nothing is being recorded");
  const stop = { type: "record_stop", episode_id: recording.episode_id, success, request_id: requestId };
  try {
    const reply = await toContent(recording.tab_id, { type: "record", on: false });
    if (reply && reply.last) await forwardRecorded(recording.episode_id, reply.last, recording.tab_id);
    const seen = await toContent(recording.tab_id, { type: "observe" });    // where it ended
    if (seen && seen.ok) stop.observation = seen.observation;
  } catch {
    // the tab is gone: what was recorded so far is kept
  }
  await recordChain;
  await setState({ recording: null });
  return send(stop);
}
