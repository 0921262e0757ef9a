// nightloop content script, 3 of 4: the user's own actions, recorded as the steps of a demonstration.
// The four files (observation.js, actions.js, recorder.js, content.js) load in that order into
// one isolated world and share `globalThis.nightloopPage`; each runs once however often it is
// injected (the manifest, then chrome.scripting where a page predates the extension). Their
// messages with the service worker are written down in protocol.js ("service worker ↔ content
// script"); the observation format is daemon/core/observation.py.

(() => {
  const page = globalThis.nightloopPage;
  if (page.setRecording) return;
  const {
    MASK, INTERACTIVE, elementId, idOf, isTextField, layout, looksClickable, observe, targetDetails,
    valueOf,
  } = page;

  // -- recording the user's own actions (demonstrations) -------------------------------------
  // While the service worker says this tab records, every trusted user action becomes one
  // {type: "recorded", action, observation, target} message, in the agent's action schema and
  // with the observation taken just before it: typing is one `fill` with the final value
  // (a password's value is never sent: it is recorded as MASK; a click into a field with no
  // typing stays a click), a select is one `select_option` with the option it held when the
  // user moved on (typing "Lima" into it passes "Lagos" on the way: that is not recorded),
  // Enter/Escape are `press`, a wheel scroll is `scroll`. Links the user follows are clicks.

  let recording = false;
  let typing = null;      // {el, observation, initial}: a text field focused, value not final
  let choosing = null;    // {el, observation, initial}: a select focused, choice not final
  let clicking = null;    // a text field the pointer went down on, before its focus
  let pressed = null;     // {el, observation}: pointerdown seen, waiting for its click
  let scrolling = null;   // {observation, y, timer}

  function clickTarget(node) {
    for (let el = node instanceof Element ? node : node.parentElement; el; el = el.parentElement) {
      if (el.matches(INTERACTIVE) || looksClickable(el)) return el;
      if (el.tagName === "LABEL" && el.control) return el.control;
    }
    return null;
  }

  // Each observation taken before a user action asks the worker for a screenshot of that moment.
  const shotOf = new WeakMap();     // observation → its snapshot id
  let nextShot = 1;

  function seen() {
    const observation = observe();
    if (recording) {
      shotOf.set(observation, nextShot);
      // the layout of this moment: the picture itself comes a few milliseconds later
      chrome.runtime.sendMessage({ type: "snapshot", id: nextShot++, layout: layout([]) }).catch(() => {});
    }
    return observation;
  }

  function emit(action, observation, el) {
    const message = { type: "recorded", action, observation, target: el ? targetDetails(el) : null,
      shot: shotOf.get(observation) };
    if (recording) chrome.runtime.sendMessage(message).catch(() => {});
    return message;
  }

  /** Record the pending `fill` if the focused field's value changed (a click if the user
   * only clicked into it); returns its message. */
  function flushTyping() {
    const t = typing;
    typing = null;
    if (!t) return null;
    if (valueOf(t.el) === t.initial) {
      return t.clicked ? emit({ action: "click", id: elementId(t.el) }, t.observation, t.el) : null;
    }
    const text = t.el.type === "password" ? MASK : valueOf(t.el);
    return emit({ action: "fill", id: elementId(t.el), text }, t.observation, t.el);
  }

  const chosen = (el) => el.selectedOptions[0]?.text.trim() || "";

  /** Record the pending `select_option` if the focused select's choice changed. */
  function flushChoosing() {
    const c = choosing;
    choosing = null;
    if (!c || chosen(c.el) === c.initial) return null;
    return emit({ action: "select_option", id: elementId(c.el), option: chosen(c.el) }, c.observation, c.el);
  }

  /** Record what is pending: the typing, then the choice. */
  function flushPending(except) {
    if (!typing || typing.el !== except) flushTyping();
    if (!choosing || choosing.el !== except) flushChoosing();
  }

  const RECORDERS = {
    focus(event) {            // capture phase: before the page's own focus handlers run
      const el = event.target;
      if (!(el instanceof Element)) return;
      flushPending(el);                                 // typing ends where focus moves on
      if (isTextField(el)) {
        typing = { el, observation: seen(), initial: valueOf(el), clicked: clicking === el };
        clicking = null;
      } else if (el.tagName === "SELECT" && (!choosing || choosing.el !== el)) {
        choosing = { el, observation: seen(), initial: chosen(el) };
      }
    },
    pointerdown(event) {
      const el = clickTarget(event.target);
      if (!el || (el !== (typing && typing.el) && !isTextField(el))) flushTyping();
      if (!choosing || choosing.el !== el) flushChoosing();
      if (el && isTextField(el) && el !== document.activeElement) clicking = el;
      pressed = el && !isTextField(el) && el.tagName !== "SELECT" ? { el, observation: seen() } : null;
    },
    click(event) {
      const p = pressed;
      pressed = null;
      if (p && p.el === clickTarget(event.target)) emit({ action: "click", id: elementId(p.el) }, p.observation, p.el);
    },
    change(event) {             // a select changed without focus first (a script's pick)
      const el = event.target;
      if (el.tagName === "SELECT" && (!choosing || choosing.el !== el)) {
        flushPending(el);
        choosing = { el, observation: seen(), initial: "" };
      }
    },
    keydown(event) {
      if (event.key !== "Enter" && event.key !== "Escape") return;
      const el = event.target instanceof Element ? event.target : null;
      flushPending(null);
      const observation = seen();
      const onPage = el && el !== document.body && observation.elements.some((e) => e.id === idOf.get(el));
      emit({ action: "press", key: event.key, ...(onPage ? { id: elementId(el) } : {}) }, observation, onPage ? el : null);
      if (el && isTextField(el)) typing = { el, observation: seen(), initial: valueOf(el) };
    },
    wheel() {
      if (!scrolling) scrolling = { observation: seen(), y: scrollY };
      clearTimeout(scrolling.timer);
      scrolling.timer = setTimeout(() => {
        const s = scrolling;
        scrolling = null;
        if (Math.abs(scrollY - s.y) > 10) emit({ action: "scroll", direction: scrollY > s.y ? "down" : "up" }, s.observation, null);
      }, 400);
    },
  };
  // A page that leaves on a choice (a select that submits its form) records it first.
  addEventListener("pagehide", () => {
    if (recording) flushPending(null);
  });
  for (const [type, handler] of Object.entries(RECORDERS)) {
    addEventListener(type, (event) => {
      if (recording && event.isTrusted) handler(event);
    }, { capture: true, passive: true });
  }

  function setRecording(on) {
    if (on === recording) return null;
    recording = on;
    // typing or a choice in progress ends the recording: returned
    const last = on ? null : flushTyping() || flushChoosing();
    typing = choosing = pressed = scrolling = null;
    if (on && document.activeElement && isTextField(document.activeElement)) {
      RECORDERS.focus({ target: document.activeElement });
    }
    return last;
  }
  // A page loaded while recording (after a link or a form) records from the start.
  chrome.runtime.sendMessage({ type: "recording?" }).then((r) => setRecording(Boolean(r && r.recording)), () => {});

  page.setRecording = setRecording;
})();
