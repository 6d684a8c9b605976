// What both pages share: calling the node, turning its errors into sentences, and
// building the page from data without ever parsing data as HTML.

// NodeError is a refusal by the node, with its OperationOutcome's text.
export class NodeError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// UserError is a problem the person can fix (a wrong passphrase, a wrong file),
// said as a sentence.
export class UserError extends Error {}

let csrfToken = "";

// setCSRF remembers the session's CSRF token, sent on every POST.
export function setCSRF(token) {
  csrfToken = token || "";
}

// call asks the node: GET when body is undefined, else POST of body as JSON (with
// the CSRF token). It returns the parsed JSON answer (or the Response when raw), and
// throws a NodeError whose message is a plain sentence.
export async function call(path, body, { raw = false } = {}) {
  const init = { credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.method = "POST";
    init.headers["Content-Type"] = "application/json";
    init.headers["X-CSRF-Token"] = csrfToken;
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new NodeError(0, "The hospital's server could not be reached. Check your connection and try again.");
  }
  if (!res.ok) {
    throw await errorOf(res);
  }
  if (raw) {
    return res;
  }
  if (res.status === 204) {
    return null;
  }
  return res.json();
}

// errorOf reads a failed answer: an OperationOutcome's diagnostics as sentences.
async function errorOf(res) {
  let text = "";
  let code = "";
  try {
    const oo = await res.json();
    if (oo && oo.resourceType === "OperationOutcome" && Array.isArray(oo.issue)) {
      text = oo.issue.map((i) => sentence(i.diagnostics || "")).filter(Boolean).join(" ");
      const first = oo.issue[0] || {};
      code = (first.details && first.details.coding && first.details.coding[0] && first.details.coding[0].code) || first.code || "";
    }
  } catch {
    // not JSON: fall through to the status
  }
  if (!text) {
    text = res.status >= 500 ? "The hospital's server had a problem. Try again in a moment." : "The request was refused (" + res.status + ").";
  }
  return new NodeError(res.status, text, code);
}

// sentence makes a diagnostic read as a sentence: capital first, full stop last.
export function sentence(s) {
  s = String(s).trim();
  if (!s) {
    return "";
  }
  s = s[0].toUpperCase() + s.slice(1);
  return /[.!?]$/.test(s) ? s : s + ".";
}

// el builds an element: attributes (class, for, aria-*, …; "text" sets its text)
// and children (elements or strings, as text).
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) {
      continue;
    }
    if (k === "text") {
      e.textContent = v;
    } else if (k === "onclick") {
      e.addEventListener("click", v);
    } else {
      e.setAttribute(k, v === true ? "" : v);
    }
  }
  for (const c of children.flat()) {
    if (c !== undefined && c !== null) {
      e.append(c);
    }
  }
  return e;
}

// $ is the element with id.
export function $(id) {
  return document.getElementById(id);
}

// show shows or hides elements by id.
export function show(id, visible) {
  $(id).hidden = !visible;
}

// say puts a message in the page's status area (role=status or role=alert).
export function say(id, message) {
  $(id).textContent = message || "";
}

// when formats block time (Unix seconds) as a date and time, UTC.
export function when(unix) {
  if (!unix) {
    return "—";
  }
  return new Date(unix * 1000).toISOString().replace("T", " ").replace(/:\d\d\.\d+Z$/, " UTC");
}

// day formats Unix seconds as a date, UTC.
export function day(unix) {
  return new Date(unix * 1000).toISOString().slice(0, 10);
}

// download offers data as a file.
export function download(name, data, type) {
  const url = URL.createObjectURL(new Blob([data], { type }));
  const a = el("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// listen opens the live stream of access-log events at path: its state is said in
// the element stateId (openText while connected), and each event, parsed, goes to
// onEvent. The browser reconnects by itself (sending the last event ID it saw).
export function listen(path, stateId, openText, onEvent) {
  const es = new EventSource(path);
  es.addEventListener("open", () => { $(stateId).textContent = openText; });
  es.addEventListener("error", () => { $(stateId).textContent = "Reconnecting…"; });
  es.addEventListener("audit", (m) => onEvent(JSON.parse(m.data)));
  return es;
}

// latest makes the loader of a part of the page that more than one thing refreshes
// (a person's action, the live stream): fetchIt fetches, showIt shows; of loads
// that overlap, only the last one started shows its answer, so an older answer
// arriving late never replaces a newer one.
export function latest(fetchIt, showIt) {
  let seq = 0;
  return async () => {
    const mine = ++seq;
    const data = await fetchIt();
    if (mine === seq) showIt(data);
  };
}

// keyedList makes list's children the elements for items, in order. Each item's
// element is named by key(item), a key that changes whenever what the element shows
// changes: an element already shown under its key stays as it is — the same element,
// with its focus, its chosen value, under the pointer of a person about to click it —
// and only the others are made, with make(item), or removed. A refresh that changes
// nothing changes nothing in the page.
export function keyedList(list, items, key, make) {
  const shown = new Map(Array.from(list.children, (c) => [c.dataset.key, c]));
  const want = items.map((it) => {
    const k = key(it);
    const e = shown.get(k) || make(it);
    e.dataset.key = k;
    return e;
  });
  const keep = new Set(want);
  for (const c of Array.from(list.children)) {
    if (!keep.has(c)) c.remove();
  }
  want.forEach((e, i) => {
    if (list.children[i] !== e) list.insertBefore(e, list.children[i] || null);
  });
}

// emergencyKey is the key (for keyedList) of an emergency access as both pages list
// it: the emergency, and its review once made.
export function emergencyKey(e) {
  return e.decision.id + (e.review ? " reviewed " + e.review.outcome + " " + e.review.reviewer + " " + e.review.height : "");
}

// guard runs an async action for a button: disables it meanwhile and shows an error
// in the alert area.
export function guard(button, alertId, action) {
  button.addEventListener("click", async (ev) => {
    ev.preventDefault();
    button.disabled = true;
    say(alertId, "");
    try {
      await action();
    } catch (e) {
      if (e instanceof NodeError) {
        say(alertId, e.message);
      } else if (e instanceof UserError) {
        say(alertId, sentence(e.message));
      } else {
        say(alertId, "Something went wrong in this page: " + (e && e.message ? e.message : e));
        console.warn(e);
      }
    } finally {
      button.disabled = false;
    }
  });
}

// Plain words for the chain's codes.
export const purposeNames = {
  TREAT: "treatment", ETREAT: "emergency treatment", BTG: "break the glass", CAREMGT: "care management",
  CLINTRCH: "clinical trial research", COVERAGE: "coverage under a health plan", HDIRECT: "directory",
  HLEGAL: "legal matters", HMARKT: "marketing", HOPERAT: "health care operations", HPAYMT: "payment",
  HQUALIMP: "quality improvement", HRESCH: "health research", HSYSADMIN: "system administration",
  PATRQT: "at your own request", POPHLTH: "population health", PUBHLTH: "public health",
  RECORDMGT: "records management",
};

export const kindNames = {
  "consent-granted": "Consent granted", "consent-revoked": "Consent revoked",
  "access-granted": "Access granted", "access-denied": "Access denied",
  "emergency-access": "Emergency access", "key-released": "Record released",
  "record-registered": "Record added", "record-erased": "Record erased",
  "emergency-reviewed": "Emergency access reviewed", "erasure-attested": "Record's key destroyed by a custodian",
  "custody-changed": "Record's key moved to new custodians",
};

export const reasonNames = {
  "hand-over": "a custodian handed its custody over", leave: "a custodian left the consortium",
  "no-consent": "no consent covers it", revoked: "the consent was revoked", expired: "the consent has expired",
  "not-yet-valid": "the consent has not started yet", "actor-not-permitted": "that hospital is not permitted",
  "purpose-not-permitted": "that purpose is not permitted", "class-not-permitted": "that kind of data is not permitted",
  "record-not-permitted": "that record is not permitted", "denied-by-provision": "a consent denies it",
  "class-denied": "a consent denies that kind of data", "record-denied": "a consent denies that record",
  "actor-denied": "a consent denies that hospital", "purpose-denied": "a consent denies that purpose",
  erased: "the record was erased", "not-yet-available": "the record is not yet held by enough custodians",
  "unconscious-patient": "the patient was unconscious", "life-threatening": "a life-threatening situation",
  "patient-unable-to-consent": "the patient was unable to consent", "public-health-emergency": "a public health emergency",
  justified: "justified", unjustified: "not justified", referred: "referred for further review",
};

// plain is a code's plain words, else the code itself.
export function plain(table, code) {
  return table[code] || code;
}
