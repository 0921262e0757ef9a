// nightloop content script, 2 of 4: the page actions it performs (a failed one answers {ok: false, error}).
// The four files (observation.js, actions.js, recorder.js, content.js) load in that order into
// one isolated world and share `globalThis.nightloopPage`; each runs once however often it is
// injected (the manifest, then chrome.scripting where a page predates the extension). Their
// messages with the service worker are written down in protocol.js ("service worker ↔ content
// script"); the observation format is daemon/core/observation.py.

(() => {
  const page = globalThis.nightloopPage;
  if (page.act) return;
  const { MASK, byId, forgetFlags, isTextField, roleOf, targetDetails } = page;

  // -- actions --------------------------------------------------------------------------------

  class ActionError extends Error {}

  function target(id) {
    const el = byId.has(id) ? byId.get(id).deref() : undefined;
    if (!el || !el.isConnected) {
      throw new ActionError(`element [${id}] no longer exists on the page; it changed since it was observed`);
    }
    return el;
  }

  function ensureEnabled(el, id) {
    if (el.disabled || el.getAttribute("aria-disabled") === "true") {
      throw new ActionError(`element [${id}] is disabled`);
    }
  }

  function bringIntoView(el) {
    const r = el.getBoundingClientRect();
    if (r.bottom < 0 || r.top > innerHeight || r.right < 0 || r.left > innerWidth) {
      el.scrollIntoView({ block: "center", inline: "center", behavior: "instant" });
    }
  }

  function pointer(el, types) {
    const r = el.getBoundingClientRect();
    const init = { bubbles: true, cancelable: true, composed: true, view: el.ownerDocument.defaultView,
      clientX: r.left + r.width / 2, clientY: r.top + r.height / 2, button: 0 };
    for (const type of types) {
      const Ctor = type.startsWith("pointer") ? PointerEvent : MouseEvent;
      el.dispatchEvent(new Ctor(type, init));
    }
  }

  function setNativeValue(el, value) {
    const proto = Object.getPrototypeOf(el);
    const setter = Object.getOwnPropertyDescriptor(proto, "value").set;
    setter.call(el, value);   // the prototype's setter, so frameworks tracking `value` notice
  }

  // A date or time written as people write it, as the value its input takes: a date in this
  // browser's order of day, month and year ("10/20/2017" in en-US) or year first becomes
  // "2017-10-20"; "7:55 PM" becomes "19:55". Anything else is left as it is.
  function inputValue(el, text) {
    const t = text.trim();
    if (el.type === "date") {
      const parts = t.split(/[/.\-\s]+/);
      if (parts.length !== 3 || !parts.every((p) => /^\d{1,4}$/.test(p))) return text;
      const order = parts[0].length === 4 ? ["year", "month", "day"] : dateOrder();
      const d = Object.fromEntries(order.map((key, i) => [key, parts[i]]));
      const year = d.year.length === 2 ? `20${d.year}` : d.year;
      return `${year.padStart(4, "0")}-${d.month.padStart(2, "0")}-${d.day.padStart(2, "0")}`;
    }
    if (el.type === "time") {
      const m = /^(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(?:([AaPp])\.?\s*[Mm]\.?)?$/.exec(t);
      if (!m) return text;
      let hours = Number(m[1]);
      if (m[4]) {
        if (hours < 1 || hours > 12) return text;
        hours = (hours % 12) + (m[4].toUpperCase() === "P" ? 12 : 0);
      }
      return `${String(hours).padStart(2, "0")}:${m[2]}${m[3] ? `:${m[3]}` : ""}`;
    }
    return text;
  }

  function dateOrder() {
    return new Intl.DateTimeFormat(undefined, { year: "numeric", month: "2-digit", day: "2-digit" })
      .formatToParts(new Date(2000, 0, 2)).map((p) => p.type).filter((type) => type !== "literal");
  }

  const fire = (el, type) => el.dispatchEvent(new Event(type, { bubbles: true, composed: true }));

  const ACTIONS = {
    click({ id }) {
      const el = target(id);
      ensureEnabled(el, id);
      bringIntoView(el);
      pointer(el, ["pointerover", "mouseover", "pointerdown", "mousedown"]);
      if (el.focus) el.focus({ preventScroll: true });
      pointer(el, ["pointerup", "mouseup"]);
      el.click();
    },
    fill({ id, text }) {
      const el = target(id);
      ensureEnabled(el, id);
      if (!isTextField(el)) {
        throw new ActionError(`element [${id}] (${roleOf(el)}) cannot be filled; fill works on text inputs, textareas and editable elements`);
      }
      if (el.readOnly) throw new ActionError(`element [${id}] is read-only`);
      bringIntoView(el);
      el.focus({ preventScroll: true });
      if (el.tagName === "INPUT" || el.tagName === "TEXTAREA") {
        const value = inputValue(el, text);
        setNativeValue(el, value);
        if (el.value !== value) {
          const shown = JSON.stringify(el.type === "password" ? MASK : text);
          const example = { date: " (a date such as 2017-10-20 or 10/20/2017)",
                            time: " (a time such as 19:55 or 7:55 PM)" }[el.type] || "";
          throw new ActionError(`element [${id}] (type ${el.type}) did not accept ${shown}${example}`);
        }
      } else {
        el.textContent = text;
      }
      el.dispatchEvent(new InputEvent("input", { bubbles: true, composed: true, inputType: "insertText", data: text }));
      fire(el, "change");
    },
    select_option({ id, option }) {
      const el = target(id);
      ensureEnabled(el, id);
      if (el.tagName !== "SELECT") throw new ActionError(`element [${id}] (${roleOf(el)}) is not a select`);
      const want = option.trim().toLowerCase();
      const options = [...el.options];
      const match = options.find((o) => o.text.trim() === option.trim())
        || options.find((o) => o.text.trim().toLowerCase() === want)
        || options.find((o) => o.value === option);
      if (!match) {
        throw new ActionError(`select [${id}] has no option ${JSON.stringify(option)}; its options are ${options.map((o) => JSON.stringify(o.text.trim())).join(", ")}`);
      }
      el.value = match.value;
      match.selected = true;
      fire(el, "input");
      fire(el, "change");
    },
    press({ key, id }) {
      const el = id !== undefined ? target(id) : (document.activeElement || document.body);
      if (id !== undefined) el.focus({ preventScroll: true });
      const init = { key, code: key.length === 1 ? `Key${key.toUpperCase()}` : key, bubbles: true, cancelable: true, composed: true };
      const proceed = el.dispatchEvent(new KeyboardEvent("keydown", init));
      if (key.length === 1 || key === "Enter") el.dispatchEvent(new KeyboardEvent("keypress", init));
      el.dispatchEvent(new KeyboardEvent("keyup", init));
      // Synthetic key events have no default action; do the one that matters most: Enter.
      if (proceed && key === "Enter") {
        if (el.form && el.tagName === "INPUT") el.form.requestSubmit();
        else if (el.tagName === "A" || el.tagName === "BUTTON") el.click();
      }
    },
    scroll({ direction, id }) {
      if (id !== undefined) {
        target(id).scrollIntoView({ block: "center", behavior: "instant" });
      } else {
        scrollBy({ top: (direction === "up" ? -0.8 : 0.8) * innerHeight, behavior: "instant" });
      }
      return { scroll_y: Math.round(scrollY) };
    },
    hover({ id }) {
      const el = target(id);
      bringIntoView(el);
      pointer(el, ["pointerover", "pointerenter", "mouseover", "mouseenter", "pointermove", "mousemove"]);
    },
  };

  // Practice on a site the user has not marked practice-safe must not submit forms: while
  // such an action runs, a submit event is stopped before the page's own handlers see it.
  // (Clicks, Enter and requestSubmit all fire it synchronously; a page script calling
  // form.submit() itself fires none.)
  let blockSubmit = false;
  let blockedSubmit = false;
  addEventListener("submit", (event) => {
    if (!blockSubmit) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    blockedSubmit = true;
  }, { capture: true });

  // Whether an action began loading another document: a link or a script setting location
  // fire the Navigation API's navigate event synchronously; a form submission a task later
  // (the HTML spec's "plan to navigate"), so a submit event no page handler cancelled counts
  // too. The worker waits for a new page only after such an action (tabs.js `settle`) and
  // answers the others at once. Same-document changes (#hash, pushState) and downloads load
  // nothing.
  let acting = false;
  let navigating = false;
  navigation.addEventListener("navigate", (event) => {
    if (acting && !event.destination.sameDocument && !event.downloadRequest) navigating = true;
  });
  addEventListener("submit", (event) => {
    if (acting && !event.defaultPrevented) navigating = true;
  });

  function act(action, allowSubmit = true) {
    acting = true;
    navigating = false;
    try {
      return { ...perform(action, allowSubmit), navigating };
    } finally {
      acting = false;
    }
  }

  function perform(action, allowSubmit) {
    const run = ACTIONS[action.action];
    if (!run) return { ok: false, error: `the page cannot perform ${JSON.stringify(action.action)}` };
    blockSubmit = !allowSubmit;
    blockedSubmit = false;
    forgetFlags();
    try {
      const details = action.id !== undefined ? targetDetails(target(action.id)) : null;
      const detail = { ...(run(action) || {}), ...(details ? { target: details } : {}) };
      if (blockedSubmit) {
        return { ok: false, error: `the form was not submitted: ${location.host} is not marked safe to practise on`, detail };
      }
      return Object.keys(detail).length ? { ok: true, detail } : { ok: true };
    } catch (err) {
      return { ok: false, error: err instanceof ActionError ? err.message : `${action.action} failed: ${err.message}` };
    } finally {
      blockSubmit = false;
    }
  }

  page.act = act;
})();
