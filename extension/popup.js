// nightloop popup: submit a task, stop it, watch its steps, approve or deny a sensitive step,
// rate the finished episode; record a demonstration, run a finished episode again without the
// model; mark the current site, or a finished episode's task, safe to practise at night; see
// what the last night learned, and undo it.
// It renders the state the service worker keeps in chrome.storage.session and sends commands
// to the worker; it never talks to the daemon itself.

import { POPUP, isWebUrl, lastWebTab } from "./protocol.js";

const $ = (id) => document.getElementById(id);
const LABELS = {
  connected: "connected", connecting: "connecting…", disconnected: "daemon not running",
  refused: "pairing refused", unpaired: "not paired",
};

/** Send a command to the worker; whether it was taken (an error is shown when not). */
async function command(message) {
  const response = await chrome.runtime.sendMessage(message);
  if (!response) showError("the extension's service worker did not answer");
  else if (!response.ok) showError(response.error);
  return Boolean(response && response.ok);
}

function showError(text) {
  $("error").textContent = text || "";
  $("error").hidden = !text;
}

/** `click link "Orders"`: the element by its `target` descriptor's role and name where the step
 * has one, else by its id (as `nightloop run` prints a step). */
function describeAction(action, target) {
  if (!action) return "(no action)";
  const { action: name, ...args } = action;
  const element = target ? `${target.role || "?"} ${JSON.stringify(target.name || "")}` : null;
  const parts = Object.entries(args).map(([k, v]) => (k === "id" ? element || `[${v}]` : JSON.stringify(v)));
  return [name, ...parts].join(" ");
}

let site = null;                  // host[:port] of the page the agent would work in
let approvalUntil = null;         // when an unanswered approval is denied (ms since the epoch)
let shownEpisode = null;          // the episode whose task "Run again for" was filled with
const chosen = {};                // practice rules just set here, shown until the daemon agrees

/** The time an open approval has left, once a second until it is answered or denied. */
function showTimeLeft() {
  if (approvalUntil === null) return;
  const left = Math.max(0, Math.ceil((approvalUntil - Date.now()) / 1000));
  $("approval-left").textContent = `Denied in ${left} s unless you answer.`;
}
setInterval(showTimeLeft, 1000);

function render(state) {
  const connection = state.connection || "connecting";
  $("connection").dataset.state = connection;
  $("connection").textContent = LABELS[connection] || connection;
  $("pair-form").hidden = !["unpaired", "refused"].includes(connection);
  showError(state.lastError);
  $("run-anyway").hidden = !(state.lastError && state.lastErrorCode === "secret_in_task");
  renderSecretNames(state.secretNames || []);

  const episode = state.episode;
  const running = episode && episode.status === "running";
  const recording = Boolean(state.recording);
  $("run").disabled = connection !== "connected" || running;
  $("record").disabled = connection !== "connected" || running;
  $("stop").disabled = !running || recording;
  $("recording").hidden = !recording;
  const fits = state.fits;
  $("fits").hidden = Boolean(running) ||
    !(fits && fits.episode_id != null && fits.task === $("task").value.trim());
  $("fits-demo").textContent = fits && fits.demonstration ? fits.demonstration : "";
  const approval = state.approval;
  $("approval").hidden = !approval;
  if (approval) {
    $("approval-reason").textContent = `It ${approval.reason}.`;
    $("approval-page").textContent = approval.page;
    $("approval-action").textContent = describeAction(approval.action);
  }
  approvalUntil = approval ? approval.until : null;
  showTimeLeft();
  $("notice").hidden = !(running && state.notice);
  $("notice-text").textContent = state.notice || "";
  const practice = state.practice || {};
  $("practice-site-label").hidden = !(site && connection === "connected");
  $("practice-host").textContent = site || "";
  $("practice-site").checked = practiceShown(practice, `site:${site}`);
  renderNight(state.night, connection === "connected");
  $("episode").hidden = !episode;
  if (!episode) return;

  $("episode-title").textContent = `Episode ${episode.id}: ${episode.task}`;
  const steps = (state.steps || []).slice().sort((a, b) => a.index - b.index);
  $("steps").replaceChildren(...steps.map((step) => {
    const li = document.createElement("li");
    li.className = step.ok ? "ok" : "failed";
    const code = document.createElement("code");
    code.textContent = (step.mode ? `[${step.mode}] ` : "") + describeAction(step.action, step.target) + (step.ok ? "" : ` — ${step.error}`);
    li.append(code);
    return li;
  }));

  $("finished").hidden = running;
  if (shownEpisode !== episode.id) {            // a new episode: its task, ready to edit
    shownEpisode = episode.id;
    $("again-task").value = episode.task;
  }
  const answer = episode.final_answer ? `: ${episode.final_answer}` : "";
  const why = episode.error ? ` (${episode.error})` : "";
  $("outcome").textContent = `Finished: ${episode.status}${answer}${why}`;
  const given = state.feedback && state.feedback.episode_id === episode.id ? state.feedback.value : null;
  for (const button of [$("thumbs-up"), $("thumbs-down")]) {
    button.setAttribute("aria-pressed", String(given === Number(button.dataset.value)));
  }
  $("feedback-note").textContent = given ? "Thanks, saved." : "";
  $("practice-task").checked = practiceShown(practice, `episode:${episode.id}`);
  if (!running && !(`episode:${episode.id}` in practice)) askPractice({ episode_id: episode.id });
}

/** The saved secrets' names, to insert as {{NAME}} where the cursor is. */
function renderSecretNames(names) {
  const select = $("secret-names");
  select.hidden = names.length === 0;
  const shown = [...select.options].slice(1).map((o) => o.value);
  if (shown.join() === names.join()) return;
  select.replaceChildren(select.options[0], ...names.map((name) => new Option(name, name)));
}

const MARKS = { better: "▲", worse: "▼", same: "=" };
const percent = (p) => `${Math.round(p * 100)}%`;
let undoAsked = false;            // the Undo button was pressed: the question shows

/** The "Last night" panel: the outcome in a line, each of your tasks before → after (the judge's
 * p at the gate), when the next night may start, and Undo while the night's adapter serves. */
function renderNight(night, connected) {
  const report = night && night.report;
  $("night").hidden = !report;
  if (!report) return;
  $("night-outcome").textContent = report.outcome;
  $("night-short").textContent = report.short || "";
  $("night-short").hidden = !report.short;
  $("night-tasks").replaceChildren(...report.changes.filter((c) => c.yours).map((c) => {
    const li = document.createElement("li");
    li.dataset.mark = c.mark;
    const mark = document.createElement("span");
    mark.className = "mark";
    mark.textContent = `${MARKS[c.mark]} `;
    li.append(mark, `${c.task}: ${percent(c.before)} → ${percent(c.after)}${c.held_out ? " (held out)" : ""}`);
    return li;
  }));
  $("night-next").textContent = night.next_run
    ? `Next night: ${night.next_run.replace("T", " ")}` : "No nightly learning scheduled (train_at).";
  const undoable = Boolean(report.can_undo) && connected;
  $("undo").hidden = !undoable || undoAsked;
  $("undo-confirm").hidden = !undoable || !undoAsked;
  $("undo-question").textContent = `Retire adapter ${report.night.candidate} and serve ` +
    (report.night.serving ? `adapter ${report.night.serving}` : "the base model") + " again?";
  if (!document.hidden) seen(report.night.id);
}

let seenShown = 0;
function seen(nightId) {            // once per night: the badge goes
  if (nightId === seenShown) return;
  seenShown = nightId;
  chrome.runtime.sendMessage({ type: POPUP.NIGHT_SEEN, night_id: nightId });
}

/** A practice box shows the user's own click until the daemon's stored rule agrees with it:
 * a render in between (a step, an answer to an earlier question) must not undo the click. */
function practiceShown(practice, key) {
  const stored = Boolean(practice[key]);
  if (key in chosen && chosen[key] !== stored) return chosen[key];
  delete chosen[key];
  return stored;
}

/** Set a practice rule; the click is remembered at once, before any await, so no render undoes it. */
async function setPractice(key, rule, allowed) {
  chosen[key] = allowed;
  if (!(await command({ type: POPUP.PRACTICE, ...rule, allowed }))) {
    delete chosen[key];
    refresh();
  }
}

const asked = new Set();
function askPractice(rule) {       // the daemon's answer arrives in state.practice
  const key = JSON.stringify(rule);
  if (!asked.has(key)) {
    asked.add(key);
    chrome.runtime.sendMessage({ type: POPUP.PRACTICE, ...rule });
  }
}

async function refresh() {
  render(await chrome.storage.session.get(null));
}

$("task-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const task = $("task").value.trim();
  if (!task) return;
  command({ type: POPUP.RUN, task, url: $("url").value.trim() || undefined });
});
$("stop").addEventListener("click", () => command({ type: POPUP.STOP }));
$("record").addEventListener("click", () => {
  const task = $("task").value.trim();
  if (!task) showError("name the task first: what are you about to do?");
  else command({ type: POPUP.RECORD, task });
});
$("record-ok").addEventListener("click", () => command({ type: POPUP.RECORD_STOP, success: true }));
$("record-failed").addEventListener("click", () => command({ type: POPUP.RECORD_STOP, success: false }));
$("resume").addEventListener("click", async () => {
  const { episode } = await chrome.storage.session.get("episode");
  if (episode) command({ type: POPUP.RESUME, episode_id: episode.id });
});
$("replay").addEventListener("click", async () => {
  const { episode } = await chrome.storage.session.get("episode");
  const task = $("again-task").value.trim();
  if (episode) command({ type: POPUP.REPLAY, episode_id: episode.id, task: task !== episode.task ? task : undefined });
});
// Typing a task asks (once it rests) whether it fits a demonstration; the answer is offered.
let fitsTimer = null;
$("task").addEventListener("input", () => {
  clearTimeout(fitsTimer);
  refresh();
  const task = $("task").value.trim();
  if (task) fitsTimer = setTimeout(() => chrome.runtime.sendMessage({ type: POPUP.FITS, task }), 300);
});
$("fits-replay").addEventListener("click", async () => {
  const { fits } = await chrome.storage.session.get("fits");
  if (fits && fits.episode_id != null) command({ type: POPUP.REPLAY, episode_id: fits.episode_id, task: $("task").value.trim() });
});
for (const button of [$("thumbs-up"), $("thumbs-down")]) {
  button.addEventListener("click", async () => {
    const { episode } = await chrome.storage.session.get("episode");
    if (episode) command({ type: POPUP.FEEDBACK, episode_id: episode.id, value: Number(button.dataset.value) });
  });
}
for (const button of [$("approve"), $("deny"), $("approve-episode")]) {
  button.addEventListener("click", async () => {
    const { approval } = await chrome.storage.session.get("approval");
    if (approval) command({ type: POPUP.APPROVE, request_id: approval.request_id, verdict: button.dataset.verdict });
  });
}
$("pair-form").addEventListener("submit", (event) => {
  event.preventDefault();
  command({ type: POPUP.PAIR, port: $("pair-port").value, token: $("pair-token").value.trim() });
});

$("secret-names").addEventListener("change", (event) => {
  const name = event.target.value;
  event.target.value = "";
  if (!name) return;
  const box = $("task");
  const at = box.selectionStart ?? box.value.length;
  box.setRangeText(`{{${name}}}`, at, box.selectionEnd ?? at, "end");
  box.focus();
});
$("run-anyway").addEventListener("click", () => {
  const task = $("task").value.trim();
  if (task) command({ type: POPUP.RUN, task, url: $("url").value.trim() || undefined, allowSecret: true });
});
$("undo").addEventListener("click", () => { undoAsked = true; refresh(); });
$("undo-no").addEventListener("click", () => { undoAsked = false; refresh(); });
$("undo-yes").addEventListener("click", async () => {
  const { night } = await chrome.storage.session.get("night");
  undoAsked = false;
  if (night && night.report) command({ type: POPUP.UNDO, adapter_id: night.report.night.candidate });
});

$("practice-site").addEventListener("change", (event) => {
  setPractice(`site:${site}`, { site }, event.target.checked);
});
$("practice-task").addEventListener("change", (event) => {   // the box is the shown episode's
  setPractice(`episode:${shownEpisode}`, { episode_id: shownEpisode }, event.target.checked);
});

chrome.storage.session.onChanged.addListener(refresh);
chrome.runtime.sendMessage({ type: POPUP.NIGHT });     // the panel shows the newest word
chrome.runtime.sendMessage({ type: POPUP.SECRETS });   // ... and the secrets' names
lastWebTab().then((tab) => {
  site = tab && isWebUrl(tab.url) && !tab.url.startsWith("file:") ? new URL(tab.url).host : null;
  if (site) askPractice({ site });
  refresh();
});
