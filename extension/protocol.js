// The extension's side of the nightloop wire protocol, version 1.
// daemon/core/protocol.py is the source of truth (it validates every frame); these typedefs mirror it.
// Every frame is a JSON object with a `type`; replies echo the request's `request_id`.

export const PROTOCOL_VERSION = 1;
export const DEFAULT_PORT = 8977;
export const AGENT = `nightloop-extension/${chrome.runtime.getManifest().version}`;

/** @typedef {"toolbar"|"cli"|"eval"|"practice"|"demonstration"|"replay"} Source */

// -- wire messages, one typedef per `type` (tests/test_protocol_js.py checks them against
// daemon/core/protocol.py: the same types, the same fields, the same optional ones) ----------

// pairing, both ways
/** @typedef {{type: "hello", protocol: number, token: string, client: "extension"|"cli", agent?: string}} Hello */
/** @typedef {{type: "welcome", protocol: number, daemon: string, episode?: Episode}} Welcome */

// the user's requests (popup → service worker → daemon, or the CLI)
/** `approve`: every sensitive action of this run is approved (`nightloop run --yes`);
 * `replay: "auto"`: a demonstration whose task this one fits runs with the new values.
 * @typedef {{type: "task", task: string, source?: Source, url?: string, tab_id?: number, request_id?: string, approve?: boolean, replay?: "auto"|"never", allow_secret?: boolean}} Task */
/** @typedef {{type: "stop", episode_id?: number, request_id?: string}} Stop */
/** @typedef {{type: "feedback", episode_id: number, value: 1|-1, request_id?: string}} Feedback */
/** Asked with only `request_id`; the daemon answers with every field set.
 * @typedef {{type: "status", request_id?: string, address?: string, db?: string, browser_connected?: boolean, episode?: Episode, counts?: object, policy?: string, adapter?: string}} Status */
/** The user starts recording a demonstration in tab `tab_id`; answered by `episode`.
 * @typedef {{type: "record_start", task: string, url?: string, tab_id?: number, request_id?: string}} RecordStart */
/** One recorded user action with the page just before it (`observation` null: browser UI) and,
 * when one was taken, its screenshot (a "tab.screenshot" probe's result).
 * @typedef {{type: "record_step", episode_id: number, action: Action, observation?: Observation, target?: Target, screenshot?: object}} RecordStep */
/** The user ends the recording: `success` is their word, stored as a user reward of ±1; with
 * success, the demonstration ends with a `done` step on `observation`, the page at that moment.
 * @typedef {{type: "record_stop", episode_id: number, success: boolean, request_id?: string, observation?: Observation}} RecordStop */
/** Re-run a finished episode by its recorded actions, without the model; answered by `episode`.
 * @typedef {{type: "replay", episode_id: number, fallback?: "model"|"none", url?: string, task?: string, tab_id?: number, request_id?: string}} Replay */
/** The user did what a paused replay asked for.
 * @typedef {{type: "resume", episode_id: number, request_id?: string}} Resume */
/** CLI only: serve the promoted adapter from the next episode on; answered by `status`.
 * @typedef {{type: "reload", request_id?: string}} Reload */
/** Promote an adapter or roll back to the serving one's parent, and switch at once; answered by
 * `adapter` with `serving` (absent: the base model) and `retired`. The popup's "Undo last
 * night" rolls back naming the night's adapter, so it never retires another one.
 * @typedef {{type: "adapter", change: "promote"|"rollback", adapter_id?: number, serving?: number, retired?: number, request_id?: string}} AdapterChange */
/** The user's verdict on an `approval_ask`.
 * @typedef {{type: "approval", request_id: string, verdict: "approve"|"approve_episode"|"deny"}} Approval */
/** Does `task` fit one of the user's good demonstrations with other values? Asked with `task`;
 * answered with `episode_id` and `demonstration` (its task) when one does.
 * @typedef {{type: "fits", task: string, request_id?: string, episode_id?: number, demonstration?: string}} Fits */
/** The last learning night: asked with `request_id` only; answered with `report` (the morning
 * report, as `nightloop night --json` prints it; absent: no night yet), when the next night may
 * start and whether the user wants a notification after one.
 * @typedef {{type: "night", request_id?: string, report?: object, next_run?: string, notify?: boolean}} LastNight */
/** The names of the saved secrets a task may name as {{NAME}} (never their values): asked with
 * `request_id` only.
 * @typedef {{type: "secrets", request_id?: string, names?: string[]}} SecretNames */
/** Ask (no `allowed`) or set a practice rule; the daemon answers with every field set.
 * @typedef {{type: "practice", site?: string, episode_id?: number, allowed?: boolean, task?: string, request_id?: string}} Practice */

// the daemon drives the browser (the CLI may relay observe / act through the daemon)
/** @typedef {{type: "observe", request_id: string, tab_id?: number}} Observe */
/** `allow_submit` false (practice on a site not marked safe): the page must submit no form.
 * @typedef {{type: "act", request_id: string, action: Action, tab_id?: number, allow_submit?: boolean}} Act */
/** Run a named probe of probes.js, or a tab probe: "tab.close", or "tab.screenshot" (args
 * {cover?: number[], max_width?: number, quality?: number}; result {image: base64 JPEG, width,
 * height, boxes: {id: [x, y, w, h]} in the image's pixels, covered, capture_ms, encode_ms} or
 * {skipped: why none was taken}); or with no tab "network.guard" (args {sites: host[:port][]};
 * result {sites}): see network_guard.js.
 * @typedef {{type: "probe", request_id: string, probe: string, tab_id?: number, args?: object}} Probe */
/** @typedef {{type: "observation", request_id: string, tab_id?: number, observation?: Observation, error?: string}} ObservationReply */
/** @typedef {{type: "action_result", request_id: string, ok: boolean, tab_id?: number, error?: string, detail?: object}} ActionResult */
/** @typedef {{type: "probe_result", request_id: string, ok: boolean, tab_id?: number, result?: object, error?: string}} ProbeResult */

// progress, daemon → every client
/** `notice`: what a paused episode waits for the user to do.
 * @typedef {{type: "episode", episode: Episode, request_id?: string, notice?: string}} EpisodeUpdate */
/** @typedef {{type: "step", episode_id: number, step: Step}} StepUpdate */
/** A sensitive action waits for the user (the first `approval` decides; none in `timeout`
 * seconds denies it).
 * @typedef {{type: "approval_ask", request_id: string, episode_id: number, index: number, action: object, page: string, kind: "navigation"|"secret"|"commit", reason: string, timeout: number, element?: string}} ApprovalAsk */

// keep-alive and errors
/** @typedef {{type: "ping"}} Ping */
/** @typedef {{type: "pong"}} Pong */
/** `code` says what a client may act on: "secret_in_task" (the task seems to hold a secret in
 * clear; the popup offers to run it anyway, with `allow_secret`).
 * @typedef {{type: "error", message: string, request_id?: string, code?: string}} ErrorMessage */

// -- service worker ↔ content script (inside the extension; chrome.tabs.sendMessage to the
// tab's top frame, chrome.runtime.sendMessage back). The content script's files are classic
// scripts and cannot import this file: these typedefs are the one place its messages are written down. ---------
/** Worker → content: observe the page; answered by {ok: true, observation} or {ok: false, error}.
 * @typedef {{type: "observe"}} ContentObserve */
/** Worker → content: perform a "page" action; answered by {ok, error?, detail?, navigating}
 * (navigating: the action began loading another document, so the worker waits for it).
 * @typedef {{type: "act", action: Action, allow_submit: boolean}} ContentAct */
/** Worker → content: where things are drawn now, for a screenshot: the viewport's size (CSS px),
 * the in-view boxes [x, y, w, h] of elements by id, and the boxes of secret fields to paint over
 * (the `cover` ids and every filled password or card field); answered by {ok: true, layout}.
 * @typedef {{type: "layout", cover: number[]}} ContentLayout */
/** Worker → content: start or stop recording the user's actions; answered by {ok: true}.
 * @typedef {{type: "record", on: boolean}} ContentRecord */
/** Content → worker, on load: is this tab being recorded? Answered by {recording: boolean}.
 * @typedef {{type: "recording?"}} ContentRecordingQuery */
/** Content → worker, while recording: take the tab now, before the user's next action, with the
 * page's layout at this moment (as "layout" answers); `id` numbers the moment per page, and the
 * `recorded` action that follows from it names it as `shot`.
 * @typedef {{type: "snapshot", id: number, layout: object}} ContentSnapshot */
/** Content → worker: one user action while recording, in the agent's action schema.
 * @typedef {{type: "recorded", action: Action, observation: Observation, target: Target|null, shot?: number}} ContentRecorded */

// -- records ------------------------------------------------------------------------------
/**
 * An action, flat: {action: "fill", id: 4, text: "Ada"}. The table of actions and their
 * arguments is daemon/core/actions.py; actions.js performs the "page" ones, tabs.js (in the
 * service worker) the "tab" ones (goto, go_back).
 * @typedef {{action: string, id?: number, text?: string, option?: string, key?: string,
 *            direction?: "up"|"down", url?: string}} Action
 */
/**
 * @typedef {{id: number, tag: string, role: string, name: string, type?: string, value?: string,
 *            checked?: boolean, options?: string[], options_omitted?: number,
 *            selected?: string, editable?: boolean,
 *            disabled?: boolean, in_view: boolean, frame?: "iframe"|"shadow",
 *            context?: boolean, autocomplete?: string, form?: number, link_origin?: string,
 *            invalid?: string}} Element
 * @typedef {{url: string, title: string, elements: Element[], text: string,
 *            omitted_elements: number, omitted_text: number, errors?: string[]}} Observation
 */
/**
 * @typedef {{id: number, task: string, source: Source, status: string, start_url?: string,
 *            final_answer?: string, error?: string, n_steps: number}} Episode
 * @typedef {{index: number, action?: Action, ok: boolean, error?: string, url?: string}} Step
 * What the content script knows of a recorded action's element (the daemon adds the rest of
 * the descriptor from the observation).
 * @typedef {{text?: string, label?: string, path?: string}} Target
 */

/** Messages between the popup and the service worker (inside the extension only). */
export const POPUP = Object.freeze({
  RUN: "run",            // {task, url?, allowSecret?}
  STOP: "stop",
  FEEDBACK: "feedback",  // {episode_id, value}
  PAIR: "pair",          // {port, token}
  RECORD: "record",      // {task}: record the user doing it in the current tab
  RECORD_STOP: "record_stop",  // {success}: save the demonstration
  REPLAY: "replay",      // {episode_id, task?}: run a finished episode again without the model
                         // (for `task`, with its values, when given)
  FITS: "fits",          // {task}: does it fit a demonstration? (answer in state.fits)
  RESUME: "resume",      // {episode_id}: the user did what a paused replay asked
  PRACTICE: "practice",  // {site | episode_id, allowed?}: ask or set a practice rule
  APPROVE: "approve",    // {request_id, verdict}: the user's answer to an approval_ask
  NIGHT: "night",        // ask the daemon for the last night's report (answer in state.night)
  NIGHT_SEEN: "night_seen",  // {night_id}: the popup showed it; the badge goes
  UNDO: "undo",          // {adapter_id}: roll the night's adapter back (the user confirmed)
  SECRETS: "secrets",    // ask for the saved secrets' names (answer in state.secretNames)
});

/** True for pages the agent can work in (not the browser's or an extension's own pages). */
export function isWebUrl(url) {
  return /^(https?|file):/.test(url || "");
}

/** The web tab the user looked at last: the agent's default tab. */
export async function lastWebTab() {
  const tabs = (await chrome.tabs.query({})).filter((t) => isWebUrl(t.url));
  tabs.sort((a, b) => (b.lastAccessed || 0) - (a.lastAccessed || 0));
  return tabs[0] || null;
}
