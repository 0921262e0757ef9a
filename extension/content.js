// nightloop content script: what the agent sees of a page, and the page actions it performs.
// Its messages with the service worker (observe, act, layout, record, recording?, recorded) are
// written down once, in protocol.js ("service worker ↔ content script"); a failed action answers
// {ok: false, error} with a precise reason. The observation format: daemon/core/observation.py.

(() => {
  if (globalThis.__nightloopContent) return;   // injected twice (manifest + scripting): once is enough
  globalThis.__nightloopContent = true;

  const MAX_ELEMENTS = 250;   // cap per observation; in-view and interactive elements go first
  const MAX_TEXT = 1500;      // characters of visible text
  const MAX_NAME = 80;
  const MAX_VALUE = 200;
  const MAX_OPTIONS = 30;
  const MASK = "•••";         // what a filled secret field shows instead of its value
  // Payment-card and one-time-code fields (observation.py SECRET_AUTOCOMPLETE, the same rule).
  const SECRET_AUTOCOMPLETE = /^(cc-(number|csc|exp|exp-month|exp-year)|one-time-code)$/;
  // Fields secret by the words of their name (observation.py SECRET_NAME): painted over in
  // screenshots.
  const SECRET_NAME = /\b(password|passcode|card ?number|credit card|cvv|cvc|csc|pin|otp|one[- ]time (code|password)|iban|security code)\b/i;

  const INTERACTIVE = [
    "a[href]", "button", "input:not([type=hidden])", "select", "textarea", "summary",
    "[contenteditable]:not([contenteditable=false])", "[onclick]", "[tabindex]:not([tabindex='-1'])",
    ...["button", "link", "checkbox", "radio", "tab", "menuitem", "option", "switch", "textbox",
      "combobox", "searchbox", "slider", "spinbutton", "treeitem"].map((r) => `[role=${r}]`),
  ].join(",");
  const LABELLED = "h1,h2,h3,h4,h5,h6,[aria-label],img[alt]:not([alt=''])";
  const TEXT_INPUTS = new Set(["text", "search", "email", "url", "tel", "password", "number",
    "date", "datetime-local", "month", "week", "time", ""]);
  // A page's own error messages: visible text in an element with an error-styled class
  // (Django's errorlist, Rails' field_with_errors, Bootstrap's invalid-feedback, …).
  const ERROR_CLASS = /error|^invalid-feedback$|^alert-danger$/i;
  const MAX_ERRORS = 5;
  const MAX_ERROR = 200;

  // Ids stay the same for the same element while the page lives.
  const idOf = new WeakMap();
  const byId = new Map();
  let nextId = 1;

  const formIdOf = new WeakMap();   // forms numbered per page, apart from the element ids
  let nextFormId = 1;

  function formId(form) {
    if (!formIdOf.has(form)) formIdOf.set(form, nextFormId++);
    return formIdOf.get(form);
  }

  function elementId(el) {
    let id = idOf.get(el);
    if (id === undefined) {
      id = nextId++;
      idOf.set(el, id);
      byId.set(id, new WeakRef(el));
    }
    return id;
  }

  const clip = (text, n) => {
    const t = (text || "").replace(/\s+/g, " ").trim();
    return t.length > n ? t.slice(0, n - 1) + "…" : t;
  };

  // -- walking the DOM: documents, open shadow roots, same-origin iframes ---------------------

  function* walk(root, frame, offset) {
    for (const el of root.querySelectorAll("*")) {
      yield { el, frame, offset };
      if (el.shadowRoot) yield* walk(el.shadowRoot, frame || "shadow", offset);
      if (el.tagName === "IFRAME" || el.tagName === "FRAME") {
        let doc = null;
        try {
          doc = el.contentDocument;   // null for cross-origin frames
        } catch {
          doc = null;
        }
        if (doc && doc.documentElement) {
          const r = el.getBoundingClientRect();
          yield* walk(doc, "iframe", { x: offset.x + r.left, y: offset.y + r.top });
        }
      }
    }
  }

  /** A script-driven control without semantics (a span with a click handler, say) usually
   * shows a pointer cursor: count the outermost element that starts one. */
  function looksClickable(el) {
    if (el.childElementCount > 3) return false;   // a container, not a control
    const view = el.ownerDocument.defaultView;
    if (view.getComputedStyle(el).cursor !== "pointer") return false;
    const parent = el.parentElement;
    return !parent || view.getComputedStyle(parent).cursor !== "pointer";
  }

  function isVisible(el, rect) {
    if (rect.width === 0 && rect.height === 0) return false;
    return el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true });
  }

  function roleOf(el) {
    const explicit = el.getAttribute("role");
    if (explicit) return explicit.split(/\s+/)[0];
    const tag = el.tagName.toLowerCase();
    if (tag === "a") return "link";
    if (tag === "button" || tag === "summary") return "button";
    if (tag === "select") return el.multiple ? "listbox" : "combobox";
    if (tag === "textarea") return "textbox";
    if (/^h[1-6]$/.test(tag)) return "heading";
    if (tag === "img") return "img";
    if (tag === "input") {
      const type = el.type;
      if (type === "checkbox" || type === "radio") return type;
      if (["button", "submit", "reset", "image"].includes(type)) return "button";
      if (type === "range") return "slider";
      if (type === "search") return "searchbox";
      if (type === "number") return "spinbutton";
      return "textbox";
    }
    if (el.isContentEditable) return "textbox";
    if (looksClickable(el)) return "clickable";
    return tag;
  }

  function textById(el, ids) {
    const root = el.getRootNode();
    return ids.split(/\s+/)
      .map((id) => (root.getElementById ? root.getElementById(id) : el.ownerDocument.getElementById(id)))
      .filter(Boolean).map((n) => contentText(n, null, true)).join(" ");
  }

  /** `node`'s text as an accessible name reads it (the name "from content" of the accessible
   * name computation): its text, an image's alt, an embedded field's value (never a secret
   * one's) or a select's chosen option, leaving out `skip` (the control a label names) and, unless `hidden` (a
   * node aria-labelledby points at), what is not rendered. */
  function contentText(node, skip, hidden = false) {
    let out = "";
    for (const child of node.childNodes) {
      if (child.nodeType === Node.TEXT_NODE) {
        out += child.textContent;
        continue;
      }
      if (child.nodeType !== Node.ELEMENT_NODE || child === skip) continue;
      if (!hidden && (!child.checkVisibility() || child.getAttribute("aria-hidden") === "true")) continue;
      const display = hidden ? "inline" : getComputedStyle(child).display;
      const gap = display.startsWith("inline") ? "" : " ";
      let text;
      if (child.tagName === "IMG") text = child.getAttribute("alt") || "";
      else if (child.tagName === "SELECT") text = child.selectedOptions[0]?.text || "";
      else if (isTextField(child)) text = isFilledSecret(child) ? "" : valueOf(child);   // never a secret
      else if (child.getAttribute("aria-label")) text = child.getAttribute("aria-label");
      else text = contentText(child, skip, hidden);
      out += gap + text + gap;
    }
    return out;
  }

  // The accessible name as the browser computes it, most of it: aria-labelledby, aria-label,
  // the <label>s' text (images by their alt), then the element's own content for the roles that
  // take a name from it, its title, its placeholder last; then a form field's `name`.
  const NEVER_BY_CONTENT = new Set(["textbox", "searchbox", "combobox", "listbox", "spinbutton",
    "slider"]);

  function nameOf(el) {
    const candidates = [
      () => el.getAttribute("aria-labelledby") && textById(el, el.getAttribute("aria-labelledby")),
      () => el.getAttribute("aria-label"),
      () => el.labels && el.labels.length && [...el.labels].map((l) => contentText(l, el)).join(" "),
      () => el.tagName === "IMG" && el.alt,
      () => el.tagName === "INPUT" && ["button", "submit", "reset"].includes(el.type) && (el.value || el.type),
      () => !isTextField(el) && el.tagName !== "SELECT" && !NEVER_BY_CONTENT.has(roleOf(el)) && contentText(el, null),
      () => el.getAttribute("title"),
      () => el.getAttribute("placeholder"),
      () => el.getAttribute("name"),
    ];
    for (const candidate of candidates) {
      const text = clip(candidate(), MAX_NAME);
      if (text) return text;
    }
    return "";
  }

  // Controls the browser's own constraint check flagged (an `invalid` event: a submit with a
  // required field empty, say) since the last action began.
  let flagged = new WeakSet();
  addEventListener("invalid", (event) => flagged.add(event.target), { capture: true });

  /** The page's words for why a control is refused (aria-invalid, or flagged by the browser's
   * check since the last action), or "" when it is not. */
  function refusal(el) {
    if (el.getAttribute("aria-invalid") !== "true" && !flagged.has(el)) return "";
    const ids = el.getAttribute("aria-errormessage") || el.getAttribute("aria-describedby");
    return clip(el.validationMessage || (ids && textById(el, ids)) || "invalid", MAX_ERROR);
  }

  /** `el`'s text when it is one of the page's error messages (see ERROR_CLASS). */
  function errorText(el, interactive) {
    if (interactive || ![...el.classList].some((c) => ERROR_CLASS.test(c))) return "";
    return isVisible(el, el.getBoundingClientRect()) ? clip(el.innerText, MAX_ERROR) : "";
  }

  function isTextField(el) {
    if (el.tagName === "TEXTAREA") return true;
    if (el.tagName === "INPUT") return TEXT_INPUTS.has(el.type);
    return el.isContentEditable;
  }

  function describe(el, frame, offset, rect) {
    const tag = el.tagName.toLowerCase();
    const d = { id: elementId(el), tag, role: roleOf(el), name: nameOf(el) };
    const x = rect.left + offset.x;
    const y = rect.top + offset.y;
    d.in_view = x < innerWidth && y < innerHeight && x + rect.width > 0 && y + rect.height > 0;
    if (frame) d.frame = frame;
    if (tag === "input") d.type = el.type;
    const autocomplete = el.getAttribute("autocomplete");
    if (autocomplete) d.autocomplete = clip(autocomplete.trim().toLowerCase(), MAX_NAME);
    if (isTextField(el)) {
      d.editable = !el.disabled && !el.readOnly;
      // Secret values stay in the page (the daemon also masks fields secret by their name).
      if (el.type === "password" || SECRET_AUTOCOMPLETE.test(d.autocomplete || "")) {
        d.value = el.value ? MASK : "";
      }
      else d.value = clip(el.isContentEditable && tag !== "input" ? el.innerText : el.value, MAX_VALUE);
    }
    if (tag === "input" && (el.type === "checkbox" || el.type === "radio")) d.checked = el.checked;
    else if (el.hasAttribute("aria-checked")) d.checked = el.getAttribute("aria-checked") === "true";
    if (tag === "select") {
      d.options = [...el.options].slice(0, MAX_OPTIONS).map((o) => clip(o.text, MAX_NAME));
      if (el.options.length > MAX_OPTIONS) d.options_omitted = el.options.length - MAX_OPTIONS;
      const chosen = el.selectedOptions[0];
      if (chosen) d.selected = clip(chosen.text, MAX_NAME);
    }
    if (el.disabled || el.getAttribute("aria-disabled") === "true") d.disabled = true;
    const invalid = refusal(el);
    if (invalid) d.invalid = invalid;
    const form = el.form || el.closest("form");     // its form owner (the form= attribute too)
    if (form) d.form = formId(form);
    if ((tag === "a" || tag === "area") && /^https?:$/.test(el.protocol)) d.link_origin = el.origin;
    return d;
  }

  function observe() {
    const found = [];
    const errors = [];
    let order = 0;
    for (const { el, frame, offset } of walk(document, null, { x: 0, y: 0 })) {
      const interactive = el.matches(INTERACTIVE) || looksClickable(el);
      const error = errorText(el, interactive);
      if (error && errors.length < MAX_ERRORS && !errors.some((e) => e.includes(error))) errors.push(error);
      if (!interactive && !el.matches(LABELLED)) continue;
      const rect = el.getBoundingClientRect();
      if (!isVisible(el, rect)) continue;
      const d = describe(el, frame, offset, rect);
      if (!interactive) d.context = true;     // read for what it says, never a target
      // Priority: in view and interactive first, then interactive, then labelled context.
      found.push({ d, order: order++, rank: (d.in_view ? 0 : 2) + (interactive ? 0 : 1) });
    }
    const kept = found.length > MAX_ELEMENTS
      ? [...found].sort((a, b) => a.rank - b.rank || a.order - b.order).slice(0, MAX_ELEMENTS)
        .sort((a, b) => a.order - b.order)
      : found;
    const text = clip(document.body ? document.body.innerText : "", Infinity);
    return {
      url: location.href,
      title: document.title,
      elements: kept.map((k) => k.d),
      text: text.slice(0, MAX_TEXT),
      omitted_elements: found.length - kept.length,
      omitted_text: Math.max(0, text.length - MAX_TEXT),
      ...(errors.length ? { errors } : {}),
    };
  }

  // -- layout: where things are drawn, for a screenshot ------------------------------------------

  /** `el`'s box [x, y, width, height] in the top viewport's CSS pixels. */
  function viewportBox(el) {
    const r = el.getBoundingClientRect();
    let x = r.left;
    let y = r.top;
    for (let view = el.ownerDocument.defaultView; view && view.frameElement; view = view.parent) {
      const frame = view.frameElement.getBoundingClientRect();
      x += frame.left;
      y += frame.top;
    }
    return [x, y, r.width, r.height].map((v) => Math.round(v * 10) / 10);
  }

  function inViewport([x, y, w, h]) {
    return w > 0 && h > 0 && x < innerWidth && y < innerHeight && x + w > 0 && y + h > 0;
  }

  function isFilledSecret(el) {
    if (!isTextField(el) || !el.value) return false;
    const autocomplete = (el.getAttribute("autocomplete") || "").trim().toLowerCase();
    return el.type === "password" || SECRET_AUTOCOMPLETE.test(autocomplete) || SECRET_NAME.test(nameOf(el));
  }

  /** What a screenshot of this moment needs: the viewport's size, the box of every element with
   * an id that is in view, and the boxes to paint over: the `cover` ids (the daemon's secret
   * fields) and every filled password or card field of the page, wherever it is. */
  function layout(cover) {
    const boxes = {};
    for (const [id, ref] of byId) {
      const el = ref.deref();
      if (!el || !el.isConnected) continue;
      const box = viewportBox(el);
      if (inViewport(box)) boxes[id] = box;
    }
    const secrets = new Set(cover.map((id) => byId.get(id)?.deref()).filter((el) => el && el.isConnected));
    for (const { el } of walk(document, null, { x: 0, y: 0 })) {
      if (isFilledSecret(el)) secrets.add(el);
    }
    const hidden = [...secrets].map(viewportBox).filter(inViewport);
    return { width: innerWidth, height: innerHeight, boxes, secrets: hidden };
  }

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

  /** What a person (and `nightloop episodes show`) reads of an action's target, beside the
   * observation's role and name: its text, a short structural path and a nearby label. */
  function targetDetails(el) {
    const path = [];
    for (let n = el; n && n.nodeType === 1 && path.length < 4; n = n.parentElement) {
      const siblings = n.parentElement ? [...n.parentElement.children].filter((c) => c.tagName === n.tagName) : [n];
      path.unshift(siblings.length > 1 ? `${n.tagName.toLowerCase()}[${siblings.indexOf(n) + 1}]` : n.tagName.toLowerCase());
    }
    const near = el.labels && el.labels.length ? el.labels[0]
      : el.closest("label") || el.previousElementSibling;
    return {
      text: isTextField(el) ? "" : clip(el.innerText || el.textContent, MAX_NAME),
      path: path.join(" > "),
      label: near ? clip(near.innerText || near.textContent, MAX_NAME) : "",
    };
  }

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

  function act(action, allowSubmit = true) {
    const perform = ACTIONS[action.action];
    if (!perform) return { ok: false, error: `the page cannot perform ${JSON.stringify(action.action)}` };
    blockSubmit = !allowSubmit;
    blockedSubmit = false;
    flagged = new WeakSet();
    try {
      const details = action.id !== undefined ? targetDetails(target(action.id)) : null;
      const detail = { ...(perform(action) || {}), ...(details ? { target: details } : {}) };
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

  function valueOf(el) {
    return el.isContentEditable && el.tagName !== "INPUT" ? el.innerText : el.value;
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

  chrome.runtime.onMessage.addListener((message, _sender, sendResponse) => {
    switch (message.type) {
      case "record":
        sendResponse({ ok: true, last: setRecording(message.on) });
        break;
      case "observe":
        try {
          sendResponse({ ok: true, observation: observe() });
        } catch (err) {
          sendResponse({ ok: false, error: `observation failed: ${err.message}` });
        }
        break;
      case "act":
        sendResponse(act(message.action, message.allow_submit !== false));
        break;
      case "layout":
        sendResponse({ ok: true, layout: layout(message.cover || []) });
        break;
      default:
        sendResponse({ ok: false, error: `unknown message type ${message.type}` });
    }
    return false;
  });
})();
